"""Read a spec file as bounded YAML: size, encoding, aliases, nesting, strings and integers checked while parsing.

`yaml.safe_load` is safe against code execution but not against size: a 535-byte "billion laughs" file (aliases of
aliases) composes into a graph that every later tree walk expands to 9^10 values, 50,000 nested brackets overflow
the composer's recursion, and a non-UTF-8 byte surfaces as a UnicodeDecodeError traceback. `read_spec_data` refuses
each of these at the point it is read - the file's size from `stat` before reading, the encoding with the offending
byte's offset, and in the composer (a `yaml.SafeLoader` subclass) every alias, every level of nesting and every
string against `Limits` - so refusing a hostile spec costs what reading a small one costs. A refusal is a SpecError
(exit 2) naming the field it was found in.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cos_ray.spec.limits import DEFAULT, Limits
from cos_ray.spec.problems import SpecError, join

INT_TAG = "tag:yaml.org,2002:int"
INT64 = 2**63


class BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer counts aliases and expanded values, and checks depth, strings and integers."""

    def __init__(self, stream: str, limits: Limits = DEFAULT, source: str | None = None):
        super().__init__(stream)
        self.limits, self.source = limits, source
        self._path: list[str] = []  # field path of the node being composed, one entry per level
        self._aliases = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded (nodes live until done)
        self._values = 0  # values composed so far in the document, aliases expanded: refused as soon as too many

    def _refuse(self, message: str, mark=None):
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise SpecError([(self._path[-1] if self._path else "", message + where)], self.source)

    def compose_node(self, parent, index):
        if isinstance(index, yaml.Node):  # the value of a mapping entry: `index` is its key
            part = join(self._path[-1] if self._path else "", str(index.value)[:80]
                        if isinstance(index, yaml.ScalarNode) else "<key>")
        elif isinstance(index, int):  # an item of a sequence
            part = join(self._path[-1] if self._path else "", index)
        else:  # the document, or a mapping's key
            part = self._path[-1] if self._path else ""
        self._path.append(part)
        try:
            if len(self._path) > self.limits.max_depth + 1:
                self._refuse(f"nested deeper than {self.limits.max_depth} levels", self.peek_event().start_mark)
            if self.check_event(yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > self.limits.max_aliases:
                    self._refuse(f"more than {self.limits.max_aliases} YAML aliases (*name); write the values out",
                                 self.peek_event().start_mark)
            node = super().compose_node(parent, index)
            self._check(node)
            return node
        finally:
            self._path.pop()

    def _check(self, node) -> None:
        key = id(node)
        if key in self._sizes:  # an alias of a node already counted: its values count again where it is used
            size = self._sizes[key]
            self._count(size, node)
        elif isinstance(node, yaml.ScalarNode):
            size = 1
            if len(node.value) > self.limits.max_string:
                self._refuse(f"a string of {len(node.value):,} characters exceeds the limit of "
                             f"{self.limits.max_string:,}", node.start_mark)
            if node.tag == INT_TAG:
                self._check_int(node)
            self._count(1, node)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(item)] for item in node.value)
            self._count(1, node)
        else:
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
            self._count(1, node)
        self._sizes[key] = size

    def _count(self, values: int, node) -> None:
        """Count values as they are composed, so a long list is refused at the limit, not after it was all read."""
        self._values += values
        if self._values > self.limits.max_nodes:
            self._refuse(f"the spec holds more than {self.limits.max_nodes:,} values (aliases expanded)",
                         node.start_mark)

    def _check_int(self, node) -> None:
        digits = sum(char.isalnum() for char in node.value)
        value = self.construct_yaml_int(node) if digits <= 80 else INT64
        if not -INT64 <= value < INT64:
            self._refuse(f"integer {node.value[:40]}{'...' if len(node.value) > 40 else ''} is outside the 64-bit "
                         f"range -2^63..2^63-1", node.start_mark)


def read_text(path: Path, limits: Limits = DEFAULT) -> str:
    """The file's text: at most `max_bytes`, UTF-8, no NUL byte - or a SpecError saying which and where."""
    source = str(path)

    def refuse(message: str):
        raise SpecError([("", message)], source)

    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            refuse(f"{size:,} bytes exceeds the limit of {limits.max_bytes:,} bytes for a spec file")
        with path.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)  # a pipe or device reports no size: read no more than allowed
    except OSError as err:
        refuse(f"cannot read it ({err.strerror or err})")
    if len(data) > limits.max_bytes:
        refuse(f"more than {limits.max_bytes:,} bytes: the limit for a spec file")
    nul = data.find(b"\0")
    if nul >= 0:
        refuse(f"a NUL byte at offset {nul} ({_line_col(data, nul)}): a spec is a YAML text file, this looks binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        refuse(f"not UTF-8: byte 0x{data[err.start]:02x} at offset {err.start} ({_line_col(data, err.start)}); "
               "save the spec as UTF-8")
    return text.removeprefix("\ufeff")


def _line_col(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - data.rfind(b"\n", 0, offset)  # rfind is -1 on the first line: column offset + 1
    return f"line {line}, column {column}"


def load_yaml(text: str, limits: Limits = DEFAULT, source: str | None = None):
    """The YAML document in `text`, composed under `limits` (SpecError when refused or not valid YAML)."""
    loader = BoundedLoader(text, limits, source)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        message = str(err)
        message = message if len(message) <= 400 else message[:400] + " ..."
        raise SpecError([("", f"not valid YAML ({message})")], source) from None
    finally:
        loader.dispose()


def read_spec_data(path: str | Path, limits: Limits = DEFAULT):
    """Read and parse a spec file under `limits`; what `yaml.safe_load` gives, or a SpecError."""
    path = Path(path)
    return load_yaml(read_text(path, limits), limits, str(path))
