"""`cos_ray.cluster.connect`: which cluster a driver joins, with which options, and that its SIGTERM handler survives.

`ray.init` is replaced by a recorder (starting real clusters here would cost 7-9 s and 0.5 GiB each); what is under
test is the choice `connect` makes and what it leaves behind, not Ray.
"""

from __future__ import annotations

import signal

import pytest


@pytest.fixture
def calls(monkeypatch):
    import ray

    made = []

    def init(**options):
        made.append(options)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as ray.init does: its own SIGTERM handler

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return made


def test_no_address_starts_a_fresh_local_cluster_and_keeps_our_sigterm_handler(calls):
    from cos_ray.cluster.connect import connect

    def ours(signum, frame):  # e.g. the sweep's request_stop
        pass

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        connect(num_cpus=3)
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert calls == [dict(address="local", include_dashboard=False, num_cpus=3, log_to_driver=False,
                          configure_logging=False)]


def test_an_address_wins_over_ray_address_which_wins_over_a_local_cluster(calls, monkeypatch):
    from cos_ray.cluster.connect import connect

    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    connect()
    connect("ray://other:10001")
    connect("local", num_cpus=2)  # a cluster of one's own, whatever RAY_ADDRESS says (the tests' session cluster)
    assert [call["address"] for call in calls] == ["ray://head:10001", "ray://other:10001", "local"]
    assert all(call["log_to_driver"] is False and call["configure_logging"] is False for call in calls)
    assert "num_cpus" not in calls[0] and calls[2]["num_cpus"] == 2


def test_a_connected_process_is_left_as_it_is(monkeypatch):
    import ray

    from cos_ray.cluster.connect import connect

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "init", lambda **options: pytest.fail(f"ray.init called again with {options}"))
    connect("ray://head:10001")
