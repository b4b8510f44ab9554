"""The only door to the East runtime (elaraai-east-py).

Everything e3 knows about East types, values and their encodings goes through
this module, so the rest of the code speaks e3's terms and the runtime can be
swapped in one place. Importing it loads the runtime (60-90 ms): plumbing that
does not need values imports it lazily, inside the function that does.

Canonical encoding: everything e3 itself writes is Beast2 container version 5
with its type header and codec "none" (no compression). It is fast on
incompressible data, it is what `east-py run` reads, and pinning one encoding
makes a value's hash a function of the value. Bytes that arrive from outside
are stored and hashed exactly as they came.

Threads. The runtime is not safe to use from several threads, in two ways, and
every function here that calls it takes care of both:
- its Cython bridge keeps module-wide state while it converts a type between
  Python and C (the scope of a recursive type being converted, caches) and runs
  Python code in the middle of that, where the interpreter may switch threads:
  two threads converting copies of one recursive type at once bind each other's
  references (wrong bytes, then heap corruption). Every call holds one lock
  (`_door`).
- its C library tracks the container values a thread makes for its cycle
  collector on a list kept in that thread's thread-local storage: a value that
  outlives the thread that made it writes into the freed storage when it is
  released (heap corruption). So the values a call returns (a decoded value, a
  compiled function) are made on the main thread or, for every other thread, on
  one thread of the runtime's own that lives as long as the process, started on
  the first such call (`_maker`): threads that come and go (a server's request,
  job and stream threads) never make a value that outlives the call. Calls that
  return only bytes, text or types (encode, print, compare) run where they are
  called: what they make, they release before they return.
The GIL never let two calls run in parallel, so neither costs parallelism;
bench/east_lock.py measures what they add to a call.
"""
from __future__ import annotations

import _thread
import os
import queue
import re
import threading
from typing import Any, BinaryIO, Callable

import east as _east
from east.serialization import beast2 as _beast2
from east.serialization.east_parser import parse_east as _parse_east
from east.serialization.east_printer import print_east as _print_east
from east.serialization.json import decode_json_for as _decode_json_for
from east.serialization.json import encode_json_for as _encode_json_for
from east.functions import function_ir as _function_ir
from east.runtime._compiler_eastc import _eastc_call, load_frozen_value as _load_frozen_value
from east._eastc_bridge import c_type_ptr_to_py_type as _py_type
from east.types.type_of_type import EastTypeType as _EastTypeType
from east.types.type_of_type import IRType as _IRType

from e3.beast2_type import field_name as _field_name
from e3.runtime_stderr import quiet_runtime  # noqa: F401 - e3.east.quiet_runtime, as callers know it
from e3.runtime_stderr import quiet_stderr as _quiet_stderr
from e3.container import MAGIC, header_problem
from e3.errors import FormatError, TypeMismatch, UsageError

# ---------------------------------------------------------------- the runtime's thread (see above)

_LOCK = threading.RLock()
_inline: frozenset[int] = frozenset({threading.main_thread().ident})
"""Threads that call the runtime themselves: the main thread, and the runtime's thread once it runs."""
_calls: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
_starting = threading.Lock()


def _serve(calls: "queue.SimpleQueue[tuple]") -> None:
    while True:
        fn, args, kwargs, box, done = calls.get()
        try:
            with _LOCK:
                box.append((True, fn(*args, **kwargs)))
        except BaseException as e:  # handed to the caller, who raises it
            box.append((False, e))
        finally:
            done.release()


def _elsewhere(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """`fn(*args, **kwargs)` on the runtime's thread; this thread waits for it."""
    global _inline
    if _LOCK._is_owned():  # type: ignore[attr-defined]
        raise RuntimeError(f"e3.east.{fn.__name__} called inside a call holding the runtime's lock (it would wait for itself)")
    if len(_inline) == 1:
        with _starting:
            if len(_inline) == 1:
                runner = threading.Thread(target=_serve, args=(_calls,), name="e3-east", daemon=True)
                runner.start()
                _inline = _inline | {runner.ident}
    done = _thread.allocate_lock()
    done.acquire()
    box: list[tuple[bool, Any]] = []
    _calls.put((fn, args, kwargs, box, done))
    done.acquire()
    ok, result = box[0]
    if ok:
        return result
    raise result


def _named(call: Callable[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    call.__name__, call.__qualname__, call.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


def _door(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, which calls the runtime and returns nothing made by it that outlives the call, run
    under the lock in the calling thread."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return fn(*args, **kwargs)

    return _named(call, fn)


def _made(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """`fn(*args, **kwargs)` under the lock on the main thread or the runtime's thread (see above)."""
    if _thread.get_ident() in _inline:
        with _LOCK:
            return fn(*args, **kwargs)
    return _elsewhere(fn, args, kwargs)


def _maker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, which returns values the runtime made, run as `_made` runs it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return _made(fn, args, kwargs)

    return _named(call, fn)


def serially(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` with the runtime to itself, on a thread allowed to make values: for a caller that
    uses what the runtime gave it (a compiled function, the values it returns) across several calls."""
    return _made(fn, args, {})


def _after_fork() -> None:
    """A forked child has one thread, this one, and no runtime thread: it starts afresh."""
    global _LOCK, _inline, _calls, _starting
    _LOCK, _calls, _starting = threading.RLock(), queue.SimpleQueue(), threading.Lock()
    _inline = frozenset({_thread.get_ident()})


os.register_at_fork(after_in_child=_after_fork)


# Types, re-exported so callers never import `east` themselves.
IntegerType = _east.IntegerType
FloatType = _east.FloatType
StringType = _east.StringType
BooleanType = _east.BooleanType
NullType = _east.NullType
DateTimeType = _east.DateTimeType
BlobType = _east.BlobType
ArrayType = _east.ArrayType
SetType = _east.SetType
DictType = _east.DictType
StructType = _east.StructType
VariantType = _east.VariantType
OptionType = _east.OptionType
RefType = _east.RefType
FunctionType = _east.FunctionType
recursive_type = _door(_east.recursive_type)  # the runtime interns recursive types in a registry of its own
TYPE_OF_TYPE = _EastTypeType
"""The East type whose values are East types: how a type is stored as a value."""

struct = _east.struct
variant = _east.variant
# Plain value constructors. `struct`/`variant` above also build expressions when a
# field holds a traced value, and to know, they walk the whole value: over deep values
# such as a package's structure of types that walk is quadratic (a 200-task package
# took 90 s). e3's own objects are always values, so the model uses these.
value_struct = _east.EastStruct
value_variant = _east.EastVariant
some = _east.some
none = _east.none
EastError = _east.EastError

# Functions: what package authors (e3.sdk) need to build East functions.
East = _east.East
"""The East builder: `East.function([param types], out_type, lambda b, *args: ...)`, `East.str`, `East.new_array`…"""
IR_TYPE = _IRType
"""The East type of function IR: a task's `function_ir` dataset and every command IR object have it."""


@_maker  # the walk builds arrays of the element type
def function_ir(fn: Any) -> Any:
    """The IR value of an `East.function` (a value of type IR_TYPE), in a canonical form.

    Two things in the IR the builder makes depend on the process, not on the
    source: each node's `loc_id` (numbered from the Python frames that built it)
    and the names it invents for nested lambdas' parameters (`__n<N>` from one
    counter for the whole process). So one source gave different IR, and a
    different package, when built by a script, by `e3 watch`, or twice in one
    process. A task's function crosses as IR alone, without the source map the
    ids index, so every `loc_id` becomes 0 ("no location"), and the invented
    names are renumbered in the order they appear: the same source always
    gives the same bytes.
    """
    return _Canonical().node(_function_ir(fn))


class _Canonical:
    """One walk over a function's IR: locations dropped, invented names renumbered (a bijection)."""

    INVENTED = re.compile(r"__n[0-9]+")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def node(self, node: Any) -> Any:
        if isinstance(node, _east.EastVariant):
            payload = node.value
            if isinstance(payload, (_east.EastStruct, _east.EastArray)):
                new = self.node(payload)
                return node if new is payload else _east.EastVariant(node.type, new)
            return node
        if isinstance(node, _east.EastStruct):
            return self.struct(node)
        if isinstance(node, _east.EastArray):
            items = [self.node(child) for child in node]
            if all(a is b for a, b in zip(items, node)):
                return node
            return _east.EastArray(node.element_type, items)
        return node

    def struct(self, node: Any) -> Any:
        located = "loc_id" in node  # an IR node, a variable or a label: its `name` may be invented
        fields, changed = {}, False
        for name, child in node.items():
            if name == "loc_id":
                new = 0
            elif name in ("type", "type_parameters"):  # East types: no locations or names in them
                new = child
            elif name == "name" and located and isinstance(child, str) and self.INVENTED.fullmatch(child):
                new = self.names.setdefault(child, f"__n{len(self.names)}")
            else:
                new = self.node(child)
            changed = changed or new is not child
            fields[name] = new
        return _east.EastStruct(fields) if changed else node


CANONICAL_VERSION = 5


# ---------------------------------------------------------------- types


@_door
def type_equal(a: Any, b: Any) -> bool:
    return bool(_east.is_type_equal(a, b))


@_door
def compare_for(t: Any) -> Any:
    """A function (a, b) -> negative, zero or positive: East's total order on values of type `t`."""
    return _door(_east.compare_for(t))


@_door
def type_key(t: Any) -> bytes:
    """A hashable identity of a type (its canonical Beast2), for caches."""
    return _beast2.encode_beast2_v5_for(_EastTypeType, codec="none")(t)


_SIMPLE = {
    "Integer": IntegerType,
    "Float": FloatType,
    "String": StringType,
    "Boolean": BooleanType,
    "Null": NullType,
    "DateTime": DateTimeType,
    "Blob": BlobType,
}
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`)|(.))")


@_maker  # a parsed type holds the runtime's arrays
def parse_type(spec: str) -> Any:
    """Parse a type given on a command line.

    Two spellings: the `.east` printing of a type value (`.Array .Integer`, as
    `format_type(..., east=True)` prints it), or the familiar sketch
    `Array<Integer>`, `Dict<String, Float>`, `Option<Integer>`,
    `Struct{a: Integer, b: String}`, `Variant{none: Null, some: Integer}`.
    """
    spec = spec.strip()
    if not spec:
        raise UsageError("empty type")
    if spec.startswith("."):
        try:
            return _parse_east(_EastTypeType, spec)
        except Exception as e:
            raise UsageError(f"invalid type {spec!r}: {_one_line(e)}") from None
    tokens = [(m.group(1), m.group(2)) for m in _TOKEN.finditer(spec) if m.group(0).strip()]
    pos = 0

    def peek() -> str | None:
        return (tokens[pos][0] or tokens[pos][1]) if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            want = repr(expected) if expected else "more"
            raise UsageError(f"invalid type {spec!r}: expected {want}, got {tok!r}")
        pos += 1
        return tok

    def name() -> str:
        tok = take()
        if tok.startswith("`"):
            return re.sub(r"\\(.)", r"\1", tok[1:-1])
        return tok

    def fields() -> list[tuple[str, Any]]:
        take("{")
        out: list[tuple[str, Any]] = []
        while peek() != "}":
            field = name()
            take(":")
            out.append((field, one()))
            if peek() == ",":
                take(",")
        take("}")
        return out

    def one() -> Any:
        head = take()
        if head in _SIMPLE:
            return _SIMPLE[head]
        if head in ("Array", "Set", "Option", "Ref"):
            take("<")
            inner = one()
            take(">")
            return {"Array": ArrayType, "Set": SetType, "Option": OptionType, "Ref": RefType}[head](inner)
        if head == "Dict":
            take("<")
            key = one()
            take(",")
            value = one()
            take(">")
            return DictType(key, value)
        if head == "Struct":
            return StructType(fields())
        if head == "Variant":
            return VariantType(fields())
        raise UsageError(f"invalid type {spec!r}: unknown type {head!r}")

    result = one()
    if pos != len(tokens):
        raise UsageError(f"invalid type {spec!r}: unexpected {peek()!r}")
    return result


@_door
def format_type(t: Any, east: bool = False) -> str:
    """Print a type: the familiar sketch, or with `east=True` the `.east` form of the type value.

    Recursive types are always printed in the `.east` form, which is lossless.
    """
    if east:
        return _print_east(t, _EastTypeType)
    try:
        return _sketch(t)
    except _NotSketchable:
        return _print_east(t, _EastTypeType)


class _NotSketchable(Exception):
    pass


def _sketch(t: Any) -> str:
    kind = t.type
    if kind in _SIMPLE:
        return kind
    if kind in ("Array", "Set", "Ref"):
        return f"{kind}<{_sketch(t.value)}>"
    if kind == "Dict":
        return f"Dict<{_sketch(t.value['key'])}, {_sketch(t.value['value'])}>"
    if kind in ("Struct", "Variant"):
        cases = [(f["name"], f["type"]) for f in t.value]
        if kind == "Variant" and [c for c, _ in cases] == ["none", "some"] and cases[0][1].type == "Null":
            return f"Option<{_sketch(cases[1][1])}>"
        inner = ", ".join(f"{_field_name(n)}: {_sketch(ft)}" for n, ft in cases)
        return f"{kind}{{{inner}}}"
    raise _NotSketchable(kind)


# ---------------------------------------------------------------- Beast2


@_door
def encoder_for(t: Any) -> Any:
    """A function value -> canonical bytes for type `t`; build once, call often."""
    return _door(_beast2.encode_beast2_v5_for(t, codec="none"))


@_door
def decoder_for(t: Any) -> Any:
    """A function bytes -> value for type `t` (header must name exactly `t`)."""
    return _maker(_beast2.decode_beast2_with_header_for(t))


@_door
def quiet_decoder_for(t: Any) -> Any:
    """`decode(data, t)[1]` for many values of type `t` (a stream's frames): the runtime's decoder made
    once, the header's type checked by the runtime; FormatError on anything else, nothing on stderr."""
    decode_t = _beast2.decode_beast2_with_header_for(t)

    def one(data: bytes | memoryview) -> Any:
        try:
            with _quiet_stderr():
                return decode_t(data)
        except Exception as e:
            raise FormatError(f"malformed beast2 value: {_one_line(e)}") from None

    return _maker(one)


@_door
def encode(value: Any, t: Any) -> bytes:
    """The canonical Beast2 bytes of `value` as a value of type `t`."""
    try:
        return _beast2.encode_beast2_v5_for(t, codec="none")(value)
    except (TypeError, ValueError, OverflowError, AttributeError) as e:  # a Dict or Ref given a non-dict: AttributeError
        raise TypeMismatch(f"value does not fit type {format_type(t)}: {_one_line(e)}") from None


def check_header(data: bytes | memoryview) -> None:
    """Refuse bytes that are not a Beast2 container this runtime reads, naming why."""
    problem = header_problem(data)
    if problem:
        raise FormatError(problem)


@_door
def read_type(data: bytes | memoryview) -> Any:
    """The East type recorded in a Beast2 header."""
    check_header(data)
    try:
        with _quiet_stderr():
            return _beast2.read_beast2_type(bytes(data) if isinstance(data, memoryview) else data)
    except Exception as e:
        raise FormatError(f"malformed beast2 header: {_one_line(e)}") from None


def type_of_stream(f: BinaryIO) -> Any:
    """The East type in the Beast2 header at the start of `f`, without holding the value: the
    head is read until the type is whole, the rest is read through (a verified reader checks the
    whole object's bytes on the way)."""
    head = f.read(1 << 12)
    while True:
        try:
            found = read_type(head)
            break
        except FormatError:
            more = f.read(len(head) * 15)
            if not more:
                raise
            head += more
    while f.read(1 << 20):
        pass
    return found


@_maker
def decode(data: bytes | memoryview, t: Any | None = None) -> tuple[Any, Any]:
    """Decode Beast2 bytes to `(type, value)`; with `t`, the header must name exactly `t`."""
    found = read_type(data)
    if t is not None and not type_equal(found, t):
        raise TypeMismatch(f"value has type {format_type(found)}, expected {format_type(t)}")
    try:
        with _quiet_stderr():
            value = _beast2.decode_beast2_with_header_for(found)(data)
    except Exception as e:
        raise FormatError(f"malformed beast2 value: {_one_line(e)}") from None
    return found, value


# ---------------------------------------------------------------- text and JSON


@_door
def to_east(value: Any, t: Any) -> str:
    return _print_east(value, t)


@_maker
def from_east(text: str, t: Any) -> Any:
    try:
        return _parse_east(t, text)
    except Exception as e:
        raise FormatError(f"invalid .east value for type {format_type(t)}: {_one_line(e)}") from None


@_door
def to_json(value: Any, t: Any) -> bytes:
    return _encode_json_for(t)(value)


@_maker
def from_json(data: bytes | str, t: Any) -> Any:
    """A value from East's JSON form, which writes an Integer as a decimal string ("5").

    A JSON number where the type has an Integer is taken too (5 for "5"): people and
    other tools write numbers. Only a text the strict reader refuses pays for that look.
    """
    data = data if isinstance(data, (bytes, str)) else bytes(data)
    try:
        return _decode_json_for(t)(data)
    except Exception as e:
        strict = e
    lenient = _integers_as_strings(data, t)
    if lenient is not None:
        try:
            return _decode_json_for(t)(lenient)
        except Exception:
            pass  # the strict reader's message says what is wrong where
    raise FormatError(f"invalid json value for type {format_type(t)}: {_one_line(strict)}") from None


def _integers_as_strings(data: bytes | str, t: Any) -> str | None:
    """The JSON text with every number that stands for an Integer of `t` written as a string;
    None if it is not JSON or has no such number."""
    import json

    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    changed = []

    def walk(obj: Any, t: Any) -> Any:
        kind = t.type
        if kind == "Integer":
            if type(obj) is int:  # not bool, not float: 5.5 stays an error
                changed.append(obj)
                return str(obj)
            return obj
        if kind in ("Array", "Set", "Ref") and isinstance(obj, list):
            return [walk(x, t.value) for x in obj]
        if kind == "Dict" and isinstance(obj, list):
            return [
                {**e, "key": walk(e["key"], t.value["key"]), "value": walk(e["value"], t.value["value"])}
                if isinstance(e, dict) and "key" in e and "value" in e else e
                for e in obj
            ]
        if kind == "Struct" and isinstance(obj, dict):
            types = {f["name"]: f["type"] for f in t.value}
            return {k: walk(v, types[k]) if k in types else v for k, v in obj.items()}
        if kind == "Variant":
            cases = {f["name"]: f["type"] for f in t.value}
            if list(cases) == ["none", "some"]:  # an Option: null, or the value itself
                return obj if obj is None else walk(obj, cases["some"])
            if isinstance(obj, dict) and obj.get("type") in cases and "value" in obj:
                return {**obj, "value": walk(obj["value"], cases[obj["type"]])}
        return obj

    out = walk(parsed, t)
    return json.dumps(out) if changed else None


@_maker
def coerce(data: Any, t: Any) -> Any:
    """Plain Python data (dicts, lists, ints…) as an East value of type `t`."""
    try:
        return _east.coerce_to(data, t)
    except Exception as e:
        raise TypeMismatch(f"value does not fit type {format_type(t)}: {_one_line(e)}") from None


# ---------------------------------------------------------------- conversion


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------- functions
#
# Running East IR in-process, exactly as `east-py run` does: the same compiler
# entry point, the same platform lookup, inputs decoded frozen (a task may not
# mutate its inputs; a small scalar, which nothing can mutate, as a plain value:
# see `run_encoded`), and the output written with the same encoder, so the
# output bytes -- and so the output hash -- are the same either way.


@_maker
def compile_function(ir: bytes | memoryview, platform: list | tuple = ()) -> Any:
    """A callable compiled from a function's Beast2 IR (what `east-py run` reads)."""
    from east.runtime.compiler import compile_from_beast2

    return compile_from_beast2(bytes(ir), list(platform), False)


@_door
def calls_no_platform(ir: bytes | memoryview) -> bool:
    """True when this function IR provably calls no platform function, so it compiles without one.

    East registers every platform function given on each compile (~45 us for east-py-std's 56),
    and a pipeline of small tasks compiles a function per task. The IR printed as East text
    names each Platform node. Function values print opaquely (as a lambda sign), and an input
    or value of function type brings code this text does not show: any of those, any inner
    function, or IR that does not print, answers False. A name in a string literal only makes
    the answer False too, never wrongly True.
    """
    try:
        from east.serialization._beast2_eastc import beast2_auto_to_east_text

        text = beast2_auto_to_east_text(bytes(ir))
    except Exception:  # not printable here (bad IR, another east-py): let the compiler decide
        return False
    return ".Platform (" not in text and "\u03bb" not in text and text.count("Function (inputs=") == 1


@_maker
def load_platform(package: str) -> list:
    """The platform functions of a package named as `east-py run -p` names it (`east-py-std`)."""
    from east_py_cli.loader import load_platform as _load

    return _load(package)


@_door
def function_signature(fn: Any) -> tuple[list, Any]:
    """(input types, output type) of an `East.function` (declaring platform functions or not) or a compiled one."""
    if hasattr(fn, "_east_param_types"):
        return list(fn._east_param_types), fn._east_out_type
    handle = fn._eastc_handle
    return list(handle.get_input_types()), handle.get_output_type()


class Runner:
    """A function compiled from IR, called on Beast2-encoded inputs as `east-py run` calls it.

    What every call needs is made once, at compile time: the parameter and output
    types as the runtime holds them, the output's encoder, and a decoder for each
    small scalar parameter. Called through `run_encoded`.
    """

    __slots__ = ("fn", "arity", "_compiled", "_in", "_out", "_scalar", "_encode")

    def __init__(self, fn: Any) -> None:
        handle = fn._eastc_handle
        self.fn = fn  # owns what the pointers below point at
        self._compiled, self._in, self._out = handle._compiled, handle._input_types, handle._output_type
        self.arity = len(self._in)
        out_type = _py_type(self._out)
        if out_type.type in ("Array", "Set", "Dict"):  # `east-py run -o FILE.beast2` pages collections
            self._encode = _beast2.encode_beast2_paged_for(out_type)
        else:
            self._encode = _beast2.encode_beast2_with_header_for(out_type)
        self._scalar = [_scalar_codec(_py_type(ptr)) for ptr in self._in]


_SCALARS = ("Integer", "Float", "Boolean", "String", "Null", "DateTime", "Blob")
_scalar_codecs: dict[str, tuple[Callable, Callable]] = {}
SCALAR_FAST_LIMIT = 4096
"""Scalar inputs up to this many bytes are decoded to Python values (see `run_encoded`)."""
_CANONICAL_HEAD = MAGIC + bytes([CANONICAL_VERSION])


def _scalar_codec(t: Any) -> "tuple[Callable, Callable] | None":
    """(decode, encode) with header for a scalar type (one pair per type, shared), else None."""
    kind = t.type
    if kind not in _SCALARS:
        return None
    codec = _scalar_codecs.get(kind)
    if codec is None:
        codec = _scalar_codecs[kind] = (_beast2.decode_beast2_with_header_for(t), _beast2.encode_beast2_with_header_for(t))
    return codec


@_maker
def compile_runner(ir: bytes | memoryview, platform: list | tuple = ()) -> Runner:
    """`compile_function`, ready to be called on encoded inputs many times (`run_encoded`)."""
    return Runner(compile_function.__wrapped__(ir, platform))


@_maker
def run_encoded(runner: Runner, inputs: list[bytes]) -> bytes:
    """Call a compiled function on Beast2-encoded inputs as `east-py run` does; return its output's
    bytes as `east-py run -o FILE.beast2` writes them (collections paged, others with header).

    `east-py run` decodes every input frozen (`load_frozen_value`: a task may not mutate its
    inputs), which costs the runtime several microseconds even for one integer, and a fan-out's
    join has thousands. A scalar has nothing to mutate: a small scalar input whose bytes are
    exactly the canonical encoding of the value they decode to is passed as that Python value,
    which the call converts to the same runtime value; any other input is decoded frozen.
    A wrong count or type raises ValueError, a runtime failure of the program raises EastError.
    """
    if len(inputs) != runner.arity:
        from east.serialization.east_printer import print_type

        handle = runner.fn._eastc_handle
        sig = ", ".join(print_type(t) for t in handle.get_input_types())
        raise ValueError(
            f"Function expects {runner.arity} inputs, got {len(inputs)}\n"
            f"Signature: ({sig}) -> {print_type(handle.get_output_type())}"
        )
    args = []
    for ptr, codec, data in zip(runner._in, runner._scalar, inputs):
        if codec is not None and len(data) <= SCALAR_FAST_LIMIT and data.startswith(_CANONICAL_HEAD):
            try:
                value = codec[0](data)
                if codec[1](value) == data:
                    args.append(value)
                    continue
            except Exception:  # noqa: BLE001 - not canonical: the frozen decoder below says what is wrong
                pass
        args.append(_load_frozen_value(ptr, bytes(data)))
    return runner._encode(_eastc_call(runner._compiled, runner._in, runner._out, tuple(args)))
