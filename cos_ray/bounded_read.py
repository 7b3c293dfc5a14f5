"""Read a JSON or YAML file cos-ray is given - a spec, a sample's task.json, EvalKit results, a training config -
under limits: a regular file only, its size, its encoding, its nesting, (YAML) its aliases and values.

`json.loads(path.read_text())` and `yaml.safe_load` trust the file: /dev/zero or a FIFO is read until memory runs out
(or forever), 2,000 nested brackets end in a RecursionError traceback, a 300 MB file is read whole, a 535-byte
"billion laughs" YAML composes into a graph every later walk expands to 9^10 values. Here:
- the file is opened without blocking and checked with `fstat` to be a regular file (a FIFO, a device, a folder is
  refused; a symlink loop or a missing file is an OSError turned into one line), then at most `max_bytes` + 1 bytes
  are read;
- the text must be UTF-8 without NUL bytes (the offending byte's offset is named);
- JSON nesting is measured on the text before it is parsed (brackets outside strings), so a deep document never
  reaches the recursive parser; YAML is composed by `BoundedLoader`, which counts depth, aliases, values and string
  lengths as it goes.
A refusal is a `FileRefused` (a UsageError: exit 2) naming the file and, in YAML, the field; callers with their own
error kind (a spec's SpecError, a task's InputError) convert it. Everything in cos-ray that imports this module may:
it sits at the package's top, beside `errors`, below every import contract.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cos_ray.errors import UsageError


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds on one file; the defaults leave every real spec, task.json or config far below them."""

    max_bytes: int = 1 << 20  # the file (1 MiB)
    max_string: int = 4096  # characters of any one YAML string (a path is at most 4096 bytes on Linux)
    max_depth: int = 32  # nesting of mappings and lists
    max_aliases: int = 16  # YAML aliases (*name) in the whole file
    max_nodes: int = 50_000  # YAML values (aliases expanded), JSON objects and arrays

    def __post_init__(self):
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}.{name}: expected an integer >= 1, got {value!r}")


DEFAULT = ReadLimits()


class FileRefused(UsageError):
    """A file that is not what cos-ray reads: `path`, the `reason`, and `field` (where in it; "" for the file)."""

    def __init__(self, path, reason: str, field: str = ""):
        self.path, self.reason, self.field = str(path), reason, field
        super().__init__(f"{self.path}: {field + ': ' if field else ''}{reason}")


def read_bytes(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `max_bytes`; FileRefused (naming the path) for anything else."""
    path = Path(path).expanduser()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)  # a FIFO opens without a writer
    try:
        descriptor = os.open(path, flags)
    except OSError as err:
        raise FileRefused(path, _cannot_open(err, what)) from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise FileRefused(path, f"is {_kind(info.st_mode)}, not a regular file (expected {_a(what)})")
    with os.fdopen(descriptor, "rb", closefd=True) as handle:
        if info.st_size > max_bytes:
            raise FileRefused(path, f"{info.st_size:,} bytes exceeds the limit of {max_bytes:,} bytes for {_a(what)}")
        try:
            data = handle.read(max_bytes + 1)  # a file growing while read is cut here too
        except OSError as err:
            raise FileRefused(path, f"cannot read it ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise FileRefused(path, f"more than {max_bytes:,} bytes: the limit for {_a(what)}")
    return data


def _cannot_open(err: OSError, what: str) -> str:
    if err.errno == errno.ENOENT:
        return f"cannot read it: no such file (expected {_a(what)})"
    if err.errno == errno.ELOOP:
        return "cannot read it: a symbolic link loop (too many levels of symbolic links)"
    return f"cannot read it ({err.strerror or err})"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def decode_text(data: bytes, path, what: str = "file") -> str:
    """UTF-8 text without NUL bytes (a leading BOM dropped); FileRefused naming the offending byte and its place."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise FileRefused(path, f"a NUL byte at offset {nul} ({line_col(data, nul)}): {_a(what)} is a text file, "
                                "this looks binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FileRefused(path, f"not UTF-8: byte 0x{data[err.start]:02x} at offset {err.start} "
                                f"({line_col(data, err.start)}); save the {what} as UTF-8") from None
    return text.removeprefix("\ufeff")


def read_text(path: str | Path, limits: ReadLimits = DEFAULT, what: str = "file") -> str:
    """The text of a regular UTF-8 file of at most `limits.max_bytes`."""
    return decode_text(read_bytes(path, limits.max_bytes, what), Path(path).expanduser(), what)


def line_col(data: bytes | str, offset: int) -> str:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1
    column = offset - data.rfind(newline, 0, offset)  # rfind is -1 on the first line: column offset + 1
    return f"line {line}, column {column}"


# JSON: strings (escapes included) are skipped, so brackets inside them do not count.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def check_json_shape(text: str, limits: ReadLimits, source) -> None:
    """FileRefused when the JSON text nests deeper than `max_depth` or holds more than `max_nodes` objects and arrays;
    measured on the text, before any recursive parser sees it."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub('""', text))
    if len(brackets) // 2 > limits.max_nodes:
        raise FileRefused(source, f"more than {limits.max_nodes:,} JSON objects and arrays")
    depth = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > limits.max_depth:
            raise FileRefused(source, f"nested deeper than {limits.max_depth} levels")


def load_json(text: str, limits: ReadLimits = DEFAULT, source="<text>"):
    """The JSON document in `text`, its nesting checked first; FileRefused when refused or not valid JSON."""
    if not text.strip():
        raise FileRefused(source, "is empty (expected a JSON document)")
    check_json_shape(text, limits, source)
    try:
        return json.loads(text)
    except RecursionError:  # unreachable after the check; kept so a parser change cannot bring the traceback back
        raise FileRefused(source, f"nested deeper than {limits.max_depth} levels") from None
    except ValueError as err:
        raise FileRefused(source, f"not valid JSON ({str(err)[:200]})") from None


def read_json(path: str | Path, limits: ReadLimits = DEFAULT, what: str = "JSON file"):
    """Read and parse a JSON file under `limits` (regular file, size, UTF-8, depth); FileRefused naming it."""
    path = Path(path).expanduser()
    return load_json(read_text(path, limits, what), limits, path)


def load_yaml(text: str, limits: ReadLimits = DEFAULT, source="<text>", what: str = "file"):
    """The YAML document in `text`, composed under `limits`; FileRefused when refused or not valid YAML."""
    import yaml

    from cos_ray.bounded_yaml import BoundedLoader, PythonBoundedLoader

    try:
        return _compose(BoundedLoader(text, limits, source, what))
    except yaml.YAMLError:  # libyaml's message: PyYAML's own reader says the same in the project's terms (depth)
        pass
    try:
        return _compose(PythonBoundedLoader(text, limits, source, what))
    except yaml.YAMLError as err:
        message = str(err)
        message = message if len(message) <= 400 else message[:400] + " ..."
        raise FileRefused(source, f"not valid YAML ({message})") from None


def _compose(loader):
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: str | Path, limits: ReadLimits = DEFAULT, what: str = "YAML file"):
    """Read and parse a YAML file under `limits`; what `yaml.safe_load` gives, or FileRefused naming it."""
    path = Path(path).expanduser()
    return load_yaml(read_text(path, limits, what), limits, path, what)
