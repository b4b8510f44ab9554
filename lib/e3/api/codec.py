"""The interface's values as East values, so they cross a wire as Beast2.

Every value of e3.api.values is a frozen dataclass of names, numbers, hashes,
times, lists, dicts and East types. `east_type(T)` derives an East type from a
Python annotation (a dataclass becomes a Struct of its fields, `X | None` an
Option, `list[X]` and `tuple[X, ...]` an Array, `tuple[X, Y]` a Struct of
`f0, f1`, `dict[K, V]` a Dict, `A | B` of dataclasses a Variant named by class,
a `datetime` its exact ISO text, an East type (`Any`) a value of the type of
types); `to_east(value, T)` and `from_east(value, T)` convert both ways, so
`from_east(to_east(x, T), T) == x`.

The server uses it for what the original API has no shape for (e3's own
operations and the full values behind the original's routes when an e3 client
asks for them); the client (e3.api.remote) decodes with the same types.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from datetime import datetime
from typing import Any

from e3 import east as E


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """A dataclass's fields and their annotations, resolved once per class (resolving them took
    most of the time of converting a run's events, one per task)."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _union_args(t: Any) -> tuple | None:
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        return typing.get_args(t)
    return None


@functools.lru_cache(maxsize=None)
def east_type(t: Any) -> Any:
    """The East type that carries Python values annotated `t`."""
    if t is str:
        return E.StringType
    if t is bool:
        return E.BooleanType
    if t is int:
        return E.IntegerType
    if t is float:
        return E.FloatType
    if t is bytes:
        return E.BlobType
    if t is datetime:
        return E.StringType
    if t is Any or t is object:
        return E.OptionType(E.TYPE_OF_TYPE)
    if t is type(None):
        return E.NullType
    args = _union_args(t)
    if args is not None:
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):  # X | None
            inner = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # type: ignore[index]
            return E.OptionType(east_type(inner))
        return E.VariantType([(a.__name__, east_type(a)) for a in rest])
    origin = typing.get_origin(t)
    if origin is list:
        return E.ArrayType(east_type(typing.get_args(t)[0]))
    if origin is tuple:
        a = typing.get_args(t)
        if len(a) == 2 and a[1] is Ellipsis:
            return E.ArrayType(east_type(a[0]))
        return E.StructType([(f"f{i}", east_type(x)) for i, x in enumerate(a)])
    if origin is dict:
        k, v = typing.get_args(t)
        return E.DictType(east_type(k), east_type(v))
    if dataclasses.is_dataclass(t):
        return E.StructType([(name, east_type(ft)) for name, ft in _fields(t)])
    raise TypeError(f"no East type for {t!r}")


def to_east(value: Any, t: Any) -> Any:
    """`value` (annotated `t`) as a value of `east_type(t)`."""
    if t in (str, bool, int, float):
        return t(value)
    if t is bytes:
        return bytes(value)
    if t is datetime:
        return value.isoformat()
    if t is Any or t is object:
        return E.none if value is None else E.some(value)
    if t is type(None):
        return None
    args = _union_args(t)
    if args is not None:
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):
            if value is None:
                return E.none
            inner = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # type: ignore[index]
            return E.some(to_east(value, inner))
        for a in rest:
            if isinstance(value, a):
                return E.value_variant(a.__name__, to_east(value, a))
        raise TypeError(f"{value!r} is none of {rest}")
    origin = typing.get_origin(t)
    if origin is list:
        (x,) = typing.get_args(t)
        return [to_east(v, x) for v in value]
    if origin is tuple:
        a = typing.get_args(t)
        if len(a) == 2 and a[1] is Ellipsis:
            return [to_east(v, a[0]) for v in value]
        return E.value_struct({f"f{i}": to_east(v, x) for i, (v, x) in enumerate(zip(value, a))})
    if origin is dict:
        k, vt = typing.get_args(t)
        return {to_east(kk, k): to_east(vv, vt) for kk, vv in value.items()}
    if dataclasses.is_dataclass(t):
        return E.value_struct({name: to_east(getattr(value, name), ft) for name, ft in _fields(t)})
    raise TypeError(f"no East type for {t!r}")


def from_east(value: Any, t: Any) -> Any:
    """The Python value annotated `t` that `value` (of `east_type(t)`) carries."""
    if t in (str, bool, int, float):
        return t(value)
    if t is bytes:
        return bytes(value)
    if t is datetime:
        return datetime.fromisoformat(value)
    if t is Any or t is object:
        return value.value if value.type == "some" else None
    if t is type(None):
        return None
    args = _union_args(t)
    if args is not None:
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):
            if value.type == "none":
                return None
            inner = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # type: ignore[index]
            return from_east(value.value, inner)
        for a in rest:
            if a.__name__ == value.type:
                return from_east(value.value, a)
        raise TypeError(f"unknown case {value.type!r}")
    origin = typing.get_origin(t)
    if origin is list:
        (x,) = typing.get_args(t)
        return [from_east(v, x) for v in value]
    if origin is tuple:
        a = typing.get_args(t)
        if len(a) == 2 and a[1] is Ellipsis:
            return tuple(from_east(v, a[0]) for v in value)
        return tuple(from_east(value[f"f{i}"], x) for i, x in enumerate(a))
    if origin is dict:
        k, vt = typing.get_args(t)
        return {from_east(kk, k): from_east(vv, vt) for kk, vv in value.items()}
    if dataclasses.is_dataclass(t):
        return t(**{name: from_east(value[name], ft) for name, ft in _fields(t)})
    raise TypeError(f"no East type for {t!r}")


def encode(value: Any, t: Any) -> bytes:
    """Beast2 of a Python value annotated `t`."""
    return E.encode(to_east(value, t), east_type(t))


def decode(data: bytes, t: Any) -> Any:
    """The Python value annotated `t` from its Beast2 (the header must name exactly east_type(t))."""
    return from_east(E.decode(data, east_type(t))[1], t)
