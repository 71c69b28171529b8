"""Reading a plan's YAML (a plan file, a `--set` value) safely: plan files come from others.

- Safe constructors only (plain mappings, lists, scalars: no Python object is ever built from a tag).
- A size limit (a plan is a few kB; /dev/zero, a FIFO or a 2 GB file is refused before it is read).
- A nesting limit: PyYAML composes and constructs recursively, so 20,000 nested `[` would end in a RecursionError.
- A limit on the nodes the document stands for once its aliases are expanded: a "billion laughs" document (each
  anchor a list of nine aliases of the previous one) is a few hundred bytes that expand to 10^9 values as soon as
  anything walks them (the run expansion, the run key's JSON).
Every value remembers where it sits, so mistakes are reported as file:line:column.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.events import AliasEvent

from dlm.errors import UserError

MAX_PLAN_BYTES = 1 << 20
MAX_SET_CHARS = 10_000
MAX_DEPTH = 64
MAX_NODES = 200_000


class Marked(dict):
    """A mapping that remembers where it (`mark`), each value (`marks`) and each key (`key_marks`) sit."""


class MarkedList(list):
    """A list that remembers where it (`mark`) and each item (`marks`) sit."""


def read_plan_text(file: str) -> str:
    """The text of a plan file, refused with one line when it is not a readable UTF-8 regular file of at most
    MAX_PLAN_BYTES."""
    path = Path(file)
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise UserError(f"plan '{file}' {what}; give a YAML file (plans/ holds examples)")
        with open(path, "rb") as f:
            data = f.read(MAX_PLAN_BYTES + 1)
    except OSError as err:
        raise UserError(f"cannot read plan '{file}' ({err.strerror or err}); plans/ holds examples") from None
    if len(data) > MAX_PLAN_BYTES:
        raise UserError(f"plan '{file}' is larger than {MAX_PLAN_BYTES >> 20} MiB; a plan is a short YAML file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"plan '{file}' is not UTF-8 text (byte {err.start}); save it as UTF-8") from None


def at(file: str, mark, message: str) -> UserError:  # file: a path, or "--set ITEM" (mark None)
    if mark is None:
        return UserError(f"{file}: {message}")
    return UserError(f"{file}, line {mark.line + 1}, column {mark.column + 1}: {message}")


class _TooBig(Exception):
    def __init__(self, mark, message: str):
        super().__init__(message)
        self.mark, self.message = mark, message


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that counts nesting and expanded nodes while it composes (see the module docstring)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth, self.expanded, self.weights = 0, 0, {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)  # the anchored node itself: its size counts again
            self._count(self._weight(node), event.start_mark)
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooBig(
                event.start_mark, f"this YAML is nested more than {MAX_DEPTH} levels deep; a plan is a few levels"
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self._count(1, event.start_mark)
        return node

    def _count(self, nodes: int, mark) -> None:
        self.expanded += nodes
        if self.expanded > MAX_NODES:
            raise _TooBig(
                mark,
                f"this YAML stands for more than {MAX_NODES:,} values once its aliases (*name) are expanded; "
                "write the plan out without them",
            )

    def _weight(self, node) -> int:
        """Values `node` stands for, aliases expanded (memoised: a shared node is counted once per reference)."""
        known = self.weights.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            weight = 1 + sum(self._weight(k) + self._weight(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            weight = 1 + sum(self._weight(child) for child in node.value)
        else:
            weight = 1
        self.weights[id(node)] = weight
        return weight


def read_yaml(text: str, file: str):
    """YAML -> Marked/MarkedList/scalars (see the module docstring); any problem is a UserError naming the place."""

    # class here: its constructors name this plan file in their errors, so each read gets its own loader
    class Loader(_LimitedLoader):
        pass

    def mapping(loader, node):
        loader.flatten_mapping(node)
        out = Marked()
        out.mark, out.marks, out.key_marks = node.start_mark, {}, {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in out
            except TypeError:  # a list or mapping as a key (`? [a]: 1`)
                raise at(file, key_node.start_mark, "a key must be a word, not a list or mapping") from None
            if duplicate:
                raise at(file, key_node.start_mark, f"'{key}' appears twice in this mapping")
            out[key] = loader.construct_object(value_node, deep=True)
            out.marks[key], out.key_marks[key] = value_node.start_mark, key_node.start_mark
        return out

    def sequence(loader, node):
        out = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
        out.mark, out.marks = node.start_mark, [child.start_mark for child in node.value]
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, sequence)
    try:
        return yaml.load(text, Loader=Loader)
    except _TooBig as err:
        raise at(file, err.mark, err.message) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise at(file, mark, f"invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:  # e.g. a control character: PyYAML's message spans lines, ours is one
        raise UserError(f"{file}: invalid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:  # belt and braces: MAX_DEPTH keeps PyYAML far from Python's recursion limit
        raise UserError(f"{file}: this YAML is nested too deeply; a plan is a few levels") from None
