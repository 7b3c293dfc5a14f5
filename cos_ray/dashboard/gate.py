"""A token in front of the dashboard when it is reachable beyond loopback: a small reverse proxy before Streamlit.

Streamlit has no authentication hook, and `--address 0.0.0.0` would serve every result and the SQL box to anyone who
can reach the port. So off loopback, `cos-ray dashboard` runs Streamlit on a private loopback port and this gate on
the public one; every request - pages, static files, media, the health check and the websocket `/_stcore/stream`
that carries all data - is checked before anything is forwarded. The convention is Jupyter's: open the printed URL
with `?token=...` once, the gate sets a cookie (an HMAC of the token, HttpOnly, SameSite=Strict) and redirects to
the same URL without the token; scripts may send `Authorization: token ...` instead. Without either: 403, nothing
forwarded. On loopback there is no gate (whoever can reach loopback can read the store anyway).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlencode

TOKEN_ENV = "COS_RAY_DASHBOARD_TOKEN"
COOKIE = "cos_ray_dashboard"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
WS_OWN = {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
          "sec-websocket-accept"}
UNREACHABLE = "503: the dashboard's Streamlit is not answering (starting or stopping); try again in a moment.\n"
REFUSED = ("403: this cos-ray dashboard needs its token. Open the URL `cos-ray dashboard` printed "
           "(http://HOST:PORT/?token=...), or send the header 'Authorization: token ...'.\n")


def is_loopback(address: str) -> bool:
    """True when every address `address` names is a loopback one (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Gate:
    """The token check; `allowed(request)` decides, `cookie_value` is what the browser keeps instead of the token."""

    def __init__(self, token: str):
        if not token or len(token) < 8:
            raise ValueError("a dashboard token must have at least 8 characters")
        self.token = token
        self.cookie_value = hmac.new(token.encode(), b"cos-ray dashboard cookie", hashlib.sha256).hexdigest()

    def allowed(self, request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("token ") and _same(header[6:].strip(), self.token):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and _same(cookie, self.cookie_value)

    def given_in_url(self, request) -> bool:
        return _same(request.query.get("token", ""), self.token)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes: compare_digest refuses non-ASCII str, and a header may hold anything)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def make_app(gate: Gate, upstream: str):
    """The aiohttp application: check, then forward HTTP (streamed) and websockets to `upstream` (http://h:p)."""
    import aiohttp
    from aiohttp import web

    async def on_startup(app):
        app["session"] = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                               timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def on_cleanup(app):
        await app["session"].close()

    async def handle(request: web.Request):
        if "token" in request.query:
            if not gate.given_in_url(request):
                return web.Response(status=403, text=REFUSED)
            rest = [(key, value) for key, value in request.query.items() if key != "token"]
            response = web.HTTPFound(request.path + (f"?{urlencode(rest)}" if rest else ""))
            response.set_cookie(COOKIE, gate.cookie_value, httponly=True, samesite="Strict", path="/")
            return response
        if not gate.allowed(request):
            return web.Response(status=403, text=REFUSED)
        try:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await _websocket(request)
            return await _http(request)
        except aiohttp.ClientConnectionError:  # Streamlit not listening yet (starting) or any more (stopping)
            return web.Response(status=503, text=UNREACHABLE)

    def _forwarded_headers(request, drop: set) -> dict:
        return {key: value for key, value in request.headers.items() if key.lower() not in drop}

    async def _http(request):
        session = request.app["session"]
        body = await request.read() if request.can_read_body else None
        async with session.request(request.method, upstream + request.rel_url.path_qs, data=body,
                                   headers=_forwarded_headers(request, HOP_BY_HOP), allow_redirects=False) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            for key, value in answer.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in answer.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(request):
        session = request.app["session"]
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        headers = _forwarded_headers(request, HOP_BY_HOP | WS_OWN)
        async with session.ws_connect(upstream + request.rel_url.path_qs, headers=headers, protocols=protocols,
                                      max_msg_size=0) as inner:
            outer = web.WebSocketResponse(protocols=[inner.protocol] if inner.protocol else (), max_msg_size=0)
            await outer.prepare(request)

            async def pump(source, sink):
                async for message in source:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(message.data)
                    elif message.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(message.data)
                    else:
                        break
                await sink.close()

            tasks = [asyncio.ensure_future(pump(outer, inner)), asyncio.ensure_future(pump(inner, outer))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            return outer

    app = web.Application(client_max_size=64 << 20)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def serve(address: str, port: int, upstream_port: int, token: str, child=None) -> int:
    """Run the gate on `address:port` in front of Streamlit on 127.0.0.1:`upstream_port` until `child` (the
    Streamlit process) exits or the gate is interrupted; returns the child's exit code (130 when interrupted)."""
    from aiohttp import web

    async def main() -> int:
        runner = web.AppRunner(make_app(Gate(token), f"http://127.0.0.1:{upstream_port}"), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, address, port).start()
        try:
            while child is None or child.poll() is None:
                await asyncio.sleep(0.5)
            return child.returncode
        finally:
            await runner.cleanup()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
