"""A strict loader from JSON to dataclasses: the one way dlm reads back what it wrote (records, outcomes, lineage,
output-dir marks), and checks what it is about to write.

`load(cls, data, where)` builds `cls` from a JSON value, field by field, following the type annotations:
`str | None`, `int`, `float`, `bool`, `list[X]`, `tuple[X, ...]`, `dict[str, X]`, nested dataclasses and `Json`
(free-form JSON kept as it is). It refuses, naming the file and the field:
- a value of the wrong type (a bool is not an int, a string is not a number),
- a non-finite float, anywhere (NaN and infinity are never a score, a count or a time),
- a number below a field's `minimum` (metadata: counts, sizes, standard errors),
- a string outside a field's `choices` (metadata: kinds, statuses, approaches),
- a missing field that has no default.
Keys the dataclass does not know are ignored when reading (a record written by an earlier dlm may carry fields
that are no longer used) and refused when writing (`strict_keys=True`): nothing is dropped without a trace.
Nothing read is ever imported, called or evaluated.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from itertools import chain

Json = typing.Union[dict, list, str, int, float, bool, None]  # free-form JSON, type-checked shallowly
MAX_DEPTH = 64  # free-form JSON nested deeper than this is refused (a record is never that deep)


class SchemaError(ValueError):
    """A value that does not fit the schema: `where` is the dotted field path (with the file in front)."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where, self.message = where, message


def check(minimum: float | None = None, choices: tuple[str, ...] | None = None) -> dict:
    """Field metadata for the loader: `field(default=None, metadata=check(minimum=0))`."""
    return {"minimum": minimum, "choices": choices}


_HINTS: dict[type, dict] = {}


def _hints(cls: type) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def load(cls, data, where: str = "", strict_keys: bool = False):
    """`cls` built from the JSON value `data`; SchemaError names the first field that does not fit."""
    if not isinstance(data, dict):
        raise SchemaError(where, f"expected an object, got {_kind(data)}")
    hints = _hints(cls)
    known = {f.name for f in fields(cls) if f.init}
    if strict_keys:
        unknown = sorted(set(data) - known)
        if unknown:
            raise SchemaError(where, f"unknown field '{unknown[0]}' (not part of {cls.__name__})")
    values = {}
    for f in fields(cls):
        if not f.init:
            continue
        path = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise SchemaError(path, "missing")
            continue
        values[f.name] = _convert(hints[f.name], data[f.name], path, f.metadata, strict_keys)
    return cls(**values)


def _convert(tp, value, where: str, meta, strict_keys: bool, depth: int = 0):
    if depth > MAX_DEPTH:
        raise SchemaError(where, f"nested deeper than {MAX_DEPTH} levels")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Json:
        return _json(value, where, depth)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, where, meta, strict_keys, depth)
        raise TypeError(f"{where}: unions other than `X | None` are not supported by the loader")
    if value is None:
        raise SchemaError(where, "is null, expected a value")
    if is_dataclass(tp):
        return load(tp, value, where, strict_keys)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SchemaError(where, f"expected a list, got {_kind(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:  # a fixed-length tuple
            if len(value) != len(args):
                raise SchemaError(where, f"expected {len(args)} items, got {len(value)}")
            return tuple(
                _convert(a, v, f"{where}[{i}]", {}, strict_keys, depth + 1) for i, (a, v) in enumerate(zip(args, value))
            )
        item = args[0] if args else Json
        fast = _scalars(item, value, meta)  # per-document lists hold thousands of plain values
        if fast is not None:
            return tuple(fast) if origin is tuple else fast
        items = [_convert(item, v, f"{where}[{i}]", meta, strict_keys, depth + 1) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise SchemaError(where, f"expected an object, got {_kind(value)}")
        item = args[1] if len(args) == 2 else Json
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise SchemaError(where, "keys must be strings")
            out[key] = _convert(item, v, f"{where}.{key}", meta, strict_keys, depth + 1)
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise SchemaError(where, f"expected true or false, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                value = int(value)  # JSON writers may write 3.0 for 3
            else:
                raise SchemaError(where, f"expected an integer, got {_kind(value)}")
        return _bounded(value, where, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(where, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise SchemaError(where, f"is {value}, expected a finite number")
        return _bounded(float(value), where, meta)
    if tp is str:
        if not isinstance(value, str):
            raise SchemaError(where, f"expected a string, got {_kind(value)}")
        choices = (meta or {}).get("choices")
        if choices and value not in choices:
            raise SchemaError(where, f"'{value[:40]}' is not one of {', '.join(choices)}")
        return value
    raise TypeError(f"{where}: the loader has no rule for {tp!r}")


_PLAIN = frozenset({str, int, bool, type(None), float})  # the JSON scalars (floats only when finite)


def _scalars(item, value, meta) -> list | None:
    """`value` as a list when every element is a plain value of the item type that needs no further check
    (strings; for free-form JSON also integers, booleans, null, finite floats and lists of those); None
    otherwise (the element-wise path then names the first bad element). Types are collected with `map` and
    floats checked through one sum: outcomes files hold millions of these values."""
    if item not in (str, Json) or (meta or {}).get("choices"):
        return None
    kinds = set(map(type, value))
    if item is str:
        return list(value) if kinds <= {str} else None
    if not kinds <= _PLAIN | {list}:
        return None
    if list in kinds:  # one check over every list's elements together, one over the rest
        inner = list(chain.from_iterable(v for v in value if type(v) is list))
        if not (_plain(inner) and _plain([v for v in value if type(v) is not list])):
            return None
    elif not _plain(value):
        return None
    return list(value)


def _plain(values) -> bool:
    """Every element is a JSON scalar, floats finite."""
    kinds = set(map(type, values))
    if not kinds <= _PLAIN:
        return False
    if float not in kinds:
        return True
    numbers = values if kinds <= {float, int, bool} else [v for v in values if type(v) is float]
    try:  # a NaN or an infinity makes the sum non-finite; so may an overflow, which only sends the list the slow way
        return math.isfinite(sum(numbers))
    except OverflowError:  # an integer too large for a float
        return False


def _bounded(value, where: str, meta):
    minimum = (meta or {}).get("minimum")
    if minimum is not None and value < minimum:
        raise SchemaError(where, f"is {value}, expected at least {minimum}")
    return value


def _json(value, where: str, depth: int):
    """Free-form JSON: any nesting of objects, lists, strings, finite numbers, booleans and null."""
    if depth > MAX_DEPTH:
        raise SchemaError(where, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # lm-eval writes NaN where a stderr is undefined
    if isinstance(value, (list, tuple)):
        return [_json(v, where, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v, where, depth + 1) for k, v in value.items()}
    raise SchemaError(where, f"{_kind(value)} is not JSON")


def _kind(value) -> str:
    return {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
