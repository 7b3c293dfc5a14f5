"""A YAML composer that refuses while it reads: nesting, aliases, values (aliases expanded), strings and integers.

`yaml.safe_load` is safe against code execution but not against size: a 535-byte "billion laughs" file (aliases of
aliases) composes into a graph that every later tree walk expands to 9^10 values, and 50,000 nested brackets
overflow the composer's recursion. `BoundedLoader` (a SafeLoader on libyaml's events) checks every node as it is
composed, so refusing a hostile file costs what reading a small one costs; a refusal is a `FileRefused` naming the field it was
found in. Used through `cos_ray.bounded_read.load_yaml` / `read_yaml`.
"""

from __future__ import annotations

import yaml

from cos_ray.bounded_read import DEFAULT, FileRefused, ReadLimits

INT_TAG = "tag:yaml.org,2002:int"
INT64 = 2**63


def join(path: str, part) -> str:
    """`a.b` / `a[0]`: the dotted field path of a node (the spec's `problems.join` spelling)."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if not part:
        return path
    return f"{path}.{part}" if path else str(part)


class _Bounds:
    """The checks, mixed into a loader ahead of its composer: every node composed passes `compose_node` below."""

    def __init__(self, stream: str, limits: ReadLimits = DEFAULT, source=None, what: str = "file"):
        super().__init__(stream)
        self.limits, self.source, self.what = limits, source, what
        self._path: list[str] = []  # field path of the node being composed, one entry per level
        self._aliases = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded (nodes live until done)
        self._values = 0  # values composed so far in the document, aliases expanded: refused as soon as too many

    def _refuse(self, message: str, mark=None):
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise FileRefused(self.source, message + where, self._path[-1] if self._path else "")

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
            self._refuse(f"the {self.what} holds more than {self.limits.max_nodes:,} values (aliases expanded)",
                         node.start_mark)

    def _check_int(self, node) -> None:
        digits = sum(char.isalnum() for char in node.value)
        value = self.construct_yaml_int(node) if digits <= 80 else INT64
        if not -INT64 <= value < INT64:
            self._refuse(f"integer {node.value[:40]}{'...' if len(node.value) > 40 else ''} is outside the 64-bit "
                         f"range -2^63..2^63-1", node.start_mark)


class PythonBoundedLoader(_Bounds, yaml.SafeLoader):
    """PyYAML's pure-Python SafeLoader, bounded: its messages name the spot where libyaml's would not (the depth)."""


try:  # libyaml scans and parses: events at C speed (a 1 MB list is refused in 0.8 s; the Python scanner took 2.4 s)
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    BoundedLoader = PythonBoundedLoader
else:
    class _CEventLoader(yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """SafeLoader's parts with PyYAML's Python composer ahead of libyaml's (the MRO picks Composer's methods)."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    class BoundedLoader(_Bounds, _CEventLoader):
        """The bounded loader on libyaml's events; on a YAML error, `load_yaml` asks PythonBoundedLoader instead."""
