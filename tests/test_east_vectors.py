"""Pinned vectors of e3's canonical encoding: Beast2 v5, codec none, with the type header.

One value of every East type kind (and a few edge values), with its exact
bytes and SHA-256. A change in the runtime's encoding changes every stored
value's hash: these tests catch it before it reaches a repository. Each vector
also round-trips through `.east` text and JSON.
"""
from __future__ import annotations

import datetime
import hashlib
import random
from typing import Any, Callable, NamedTuple

import pytest

from e3_testing.commands import run

from e3 import east
from e3.beast2_type import type_text
from e3.errors import FormatError, TypeMismatch

UTC = datetime.timezone.utc
TREE = east.recursive_type(lambda self: east.VariantType([("leaf", east.IntegerType), ("node", east.ArrayType(self))]))


class Vector(NamedTuple):
    name: str
    spec: str
    value: Callable[[], Any]
    beast2: str
    sha256: str
    east_text: str
    json_text: str

    @property
    def type(self) -> Any:
        return TREE if self.spec == "TREE" else east.parse_type(self.spec)


VECTORS = [
    Vector('integer', 'Integer', lambda: -42,
           '89456173740d0a050003000102010000010153',
           '56ba9ee49387ba8545f04bf5c50e0d2d833edc22bc284a3dc8d1cd25802c88ee',
           '-42', '"-42"'),
    Vector('integer_min', 'Integer', lambda: -(2**63),
           '89456173740d0a0500030001020100000a0affffffffffffffffff01',
           'c2cca02d87929f808e398875ae3e6d9a5ffc4dfc30e4e4f1ca7cb7c8438fdba1',
           '-9223372036854775808', '"-9223372036854775808"'),
    Vector('float', 'Float', lambda: 1.5,
           '89456173740d0a0500030001030100000808000000000000f83f',
           '87cc717c0470dfc151f28f7d0692623c2a741d4bea0a024d3e6373de8641ab28',
           '1.5', '1.5'),
    Vector('float_negative_zero', 'Float', lambda: -0.0,
           '89456173740d0a05000300010301000008080000000000000080',
           'dfde5916d69e0b6ee0b38401cd76171e6dbacd6055cffbdf36c089b15621cf5e',
           '-0.0', '"-0.0"'),
    Vector('float_nan', 'Float', lambda: float("nan"),
           '89456173740d0a0500030001030100000808000000000000f87f',
           '12748b7855a2772df287149e318fc95b81780b5c70cc331c3067d6119015391d',
           'NaN', '"NaN"'),
    Vector('float_minus_infinity', 'Float', lambda: float("-inf"),
           '89456173740d0a0500030001030100000808000000000000f0ff',
           '7ed51d677be6eeaecdd1dcd61087d8a09337caf78f0784e881ed927c3f1de56c',
           '-Infinity', '"-Infinity"'),
    Vector('string', 'String', lambda: "héllo",
           '89456173740d0a05000300010101000007070668c3a96c6c6f',
           '540878fcb82f1ff5b8073edfd9969637420e6bd7bf4ecdba73289f5aabdf329e',
           '"héllo"', '"héllo"'),
    Vector('string_empty', 'String', lambda: "",
           '89456173740d0a050003000101010000010100',
           '0831fca7a53963838eb002a2aae95762784b80a257556f2c532b1071271c9c7d',
           '""', '""'),
    Vector('boolean', 'Boolean', lambda: True,
           '89456173740d0a050003000104010000010101',
           '95e3915b887efa167b231792ed50a3780533951c9ff7b2b64cfa0dddfb15ac58',
           'true', 'true'),
    Vector('null', 'Null', lambda: None,
           '89456173740d0a0500030001000100000000',
           '543afc9e406859afc9074f68a897d10c94f46f7c46001aa1781dd4c03100b1e5',
           'null', 'null'),
    Vector('datetime', 'DateTime', lambda: datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
           '89456173740d0a0500030001050100000606dcec86829963',
           '1a3d2f79a38d10f74c94374b6920d338cb8b288df7e13813f4a4ab4d14cfb479',
           '2024-01-02T03:04:05.678', '"2024-01-02T03:04:05.678+00:00"'),
    Vector('blob', 'Blob', lambda: b"\x00\x01\xff",
           '89456173740d0a0500030001060100000404030001ff',
           '03f747f60be63b41ebcce61347bffcf8a7be94600d681f6dca38c8fd1e5ea2cc',
           '0x0001ff', '"0x0001ff"'),
    Vector('array', 'Array<Integer>', lambda: [1, 2, 3],
           '89456173740d0a0500050102020a000100000606000302040600',
           '82bf4e161c8f53975926c455160597782dfd822b1120b412664a43a6c490a83a',
           '[1, 2, 3]', '["1","2","3"]'),
    Vector('array_empty', 'Array<String>', lambda: [],
           '89456173740d0a0500050102010a0001000002020000',
           'd9a880d00a17e96e88aef1a7f220857566d37a7d14e1688c36c92ede5530224a',
           '[]', '[]'),
    Vector('set', 'Set<String>', lambda: {"b", "a"},
           '89456173740d0a0500050102010c00010000070700020161016200',
           'ff952cc58d564c9489ee29552defd23151c2e8f54aedb8f0d5d5dfb84f2c8ac8',
           '{"a","b"}', '["a","b"]'),
    Vector('dict', 'Dict<String, Integer>', lambda: {"y": 2, "x": 1},
           '89456173740d0a050007020301020b00010100000909000201780201790400',
           '983db8d8bdf190b8915069355efa82d590aa8390b0197e50270ed65042333c44',
           '{"x":1,"y":2}', '[{"key":"x","value":"1"},{"key":"y","value":"2"}]'),
    Vector('struct', 'Struct{a: Integer, b: String}', lambda: {"a": 1, "b": "x"},
           '89456173740d0a05000c0203020109020161000162010100000303020178',
           '94531b6afc0c81d2751d1ebb663cc6130b195cab4e86ee732c24b9741bc1390a',
           '(a=1, b="x")', '{"a":"1","b":"x"}'),
    Vector('variant', 'Variant{err: String, ok: Integer}', lambda: east.variant("ok", 7),
           '89456173740d0a05000f0203010208020365727200026f6b010100000202010e',
           '6bae9638c7df5ea027e1d87e750684024f0a7f4834f61629ef8c7fe16605b424',
           '.ok 7', '{"type":"ok","value":"7"}'),
    Vector('option_some', 'Option<Integer>', lambda: east.some(5),
           '89456173740d0a050012020300020802046e6f6e650004736f6d65010100000202010a',
           '752c664182d3df0c2c300cdea4a5651ea566ccdcf82ddf088b12bc0f5429e6dc',
           '.some 5', '"5"'),
    Vector('option_none', 'Option<Integer>', lambda: east.none,
           '89456173740d0a050012020300020802046e6f6e650004736f6d6501010000010100',
           'eb9189fd175c39bceeff4578897e73e16e0aedf17c9e3cba58a0c4ac7d645ff3',
           '.none', 'null'),
    Vector('nested', 'Dict<String, Array<Option<Float>>>', lambda: {"k": [east.some(1.0), east.none]},
           '89456173740d0a05001805060100030802046e6f6e650104736f6d65020a030b000401000012120001016b000201000000000000f03f000000',
           '6a5ea18c4cdb63c50f63428582eb440dc6b6e9adea0d71713fbc9e2c95518e9e',
           '{"k":[.some 1.0, .none]}', '[{"key":"k","value":[1,null]}]'),
    Vector('recursive', 'TREE', lambda: east.variant("node", [east.variant("leaf", 1), east.variant("node", [east.variant("leaf", 2)])]),
           '89456173740d0a05001500041203020a000802046c65616601046e6f6465020100000c0c010002000201000100040000',
           '7f941cf53a260f55ec46dc9e7c2b615ac3159cde2bfb7e12825db37241089e9f',
           '.node [.leaf 1, .node [.leaf 2]]', '{"type":"node","value":[{"type":"leaf","value":"1"},{"type":"node","value":[{"type":"leaf","value":"2"}]}]}'),
]
KINDS = {"Integer", "Float", "String", "Boolean", "Null", "DateTime", "Blob", "Array", "Set", "Dict", "Struct", "Variant", "Recursive"}
ids = [v.name for v in VECTORS]


def test_vectors_cover_every_type_kind():
    assert {v.type.type for v in VECTORS} == KINDS
    assert any(v.spec.startswith("Option<") for v in VECTORS)


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_canonical_beast2_bytes_are_pinned(v):
    assert east.encode(east.coerce(v.value(), v.type), v.type).hex() == v.beast2


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_object_hash_is_sha256_of_the_pinned_bytes(v):
    assert hashlib.sha256(bytes.fromhex(v.beast2)).hexdigest() == v.sha256


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_pinned_bytes_decode_to_the_type_and_encode_back_identically(v):
    t, value = east.decode(bytes.fromhex(v.beast2))
    assert east.type_equal(t, v.type)
    assert east.encode(value, t).hex() == v.beast2


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_east_text_round_trips_to_the_same_bytes(v):
    _, value = east.decode(bytes.fromhex(v.beast2))
    assert east.to_east(value, v.type) == v.east_text
    assert east.encode(east.from_east(v.east_text, v.type), v.type).hex() == v.beast2


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_json_round_trips_to_the_same_bytes(v):
    _, value = east.decode(bytes.fromhex(v.beast2))
    assert east.to_json(value, v.type).decode() == v.json_text
    assert east.encode(east.from_json(v.json_text, v.type), v.type).hex() == v.beast2


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_type_prints_and_parses_back(v):
    assert east.type_equal(east.parse_type(east.format_type(v.type)), v.type)
    assert east.type_equal(east.parse_type(east.format_type(v.type, east=True)), v.type)


def test_set_and_dict_encoding_does_not_depend_on_insertion_order():
    d = east.DictType(east.StringType, east.IntegerType)
    assert east.encode(east.coerce({"a": 1, "b": 2}, d), d) == east.encode(east.coerce({"b": 2, "a": 1}, d), d)
    s = east.SetType(east.IntegerType)
    assert east.encode(east.coerce([3, 1, 2], s), s) == east.encode(east.coerce([2, 3, 1], s), s)


def test_equal_recursive_types_made_separately_encode_identically():
    other = east.recursive_type(lambda self: east.VariantType([("leaf", east.IntegerType), ("node", east.ArrayType(self))]))
    [v] = [v for v in VECTORS if v.name == "recursive"]
    assert east.encode(east.coerce(v.value(), other), other).hex() == v.beast2


def test_the_canonical_encoding_is_v5_uncompressed():
    for v in VECTORS:
        assert bytes.fromhex(v.beast2)[:8] == b"\x89East\r\n\x05"


def test_other_valid_encodings_of_a_value_decode_but_hash_differently():
    from east.serialization.beast2 import encode_beast2_with_header_for

    t = east.ArrayType(east.IntegerType)
    value = east.coerce([0] * 1000, t)
    canonical = east.encode(value, t)
    for other in (encode_beast2_with_header_for(t)(value), encode_beast2_with_header_for(t, version=4)(value)):
        assert other != canonical  # compressed (v5 default) or container version 4
        found, decoded = east.decode(other)
        assert east.encode(decoded, found) == canonical


def test_value_outside_its_type_is_refused():
    with pytest.raises(TypeMismatch):
        east.encode(2**63, east.IntegerType)
    with pytest.raises(FormatError):
        east.from_east('"x"', east.IntegerType)


def test_hash_object_gives_the_pinned_hash_for_each_east_text():
    for v in VECTORS:
        if v.spec == "TREE":
            continue
        out = run("e3-hash-object", "-t", v.spec, "--stdin", input=v.east_text).out.strip()
        assert out == v.sha256, v.name


# ---------------------------------------------------------------- the runtime-free type reader

NAMES = ["a", "b_2", "_", "Zed", "a b", "x-y", "1st", "", "é", "back`tick", "back\\slash", "new\nline", "none", "some", "日本"]


def _random_type(rng: random.Random, depth: int) -> Any:
    simple = [east.IntegerType, east.FloatType, east.StringType, east.BooleanType, east.NullType, east.DateTimeType, east.BlobType]
    kind = rng.choice(["simple"] * 2 + ["Array", "Set", "Ref", "Dict", "Struct", "Variant", "Option"]) if depth else "simple"
    if kind == "simple":
        return rng.choice(simple)
    if kind in ("Array", "Set", "Ref", "Option"):
        inner = rng.choice(simple) if kind == "Set" else _random_type(rng, depth - 1)
        return {"Array": east.ArrayType, "Set": east.SetType, "Ref": east.RefType, "Option": east.OptionType}[kind](inner)
    if kind == "Dict":
        return east.DictType(rng.choice(simple), _random_type(rng, depth - 1))
    names = rng.sample(NAMES, rng.randint(0 if kind == "Struct" else 1, 4))
    fields = [(n, _random_type(rng, depth - 1)) for n in names]
    return east.StructType(fields) if kind == "Struct" else east.VariantType(fields)


def _some_value(t: Any) -> Any:
    """A plain value of type `t`, enough to get its header encoded."""
    kind = t.type
    zero = {"Integer": 0, "Float": 0.0, "String": "", "Boolean": False, "Null": None, "Blob": b"",
            "DateTime": datetime.datetime(1970, 1, 1, tzinfo=UTC)}
    if kind in zero:
        return zero[kind]
    if kind in ("Array", "Set"):
        return []
    if kind == "Dict":
        return {}
    if kind == "Ref":
        return _some_value(t.value)
    if kind == "Struct":
        return {f["name"]: _some_value(f["type"]) for f in t.value}
    first = t.value[0]
    return east.variant(first["name"], _some_value(first["type"]))


def _header_of(t: Any) -> bytes:
    return east.encode(east.coerce(_some_value(t), t), t)


@pytest.mark.parametrize("v", VECTORS, ids=ids)
def test_the_runtime_free_type_reader_prints_what_the_runtime_prints(v):
    data = bytes.fromhex(v.beast2)
    expected = None if v.spec == "TREE" else east.format_type(east.read_type(data))  # recursive: left to the runtime
    assert type_text(data) == expected


def test_the_runtime_free_type_reader_agrees_on_generated_nested_types():
    rng = random.Random(3)
    for _ in range(400):
        t = _random_type(rng, rng.randint(1, 5))
        data = _header_of(t)
        assert type_text(data) == east.format_type(east.read_type(data)), east.format_type(t, east=True)


def test_the_canonical_header_made_without_the_runtime_is_the_runtimes():
    """e3 set judges a value canonical without the runtime by its header: beast2_type.canonical_header
    must make, for every type walk_type reads, the header the runtime writes."""
    from e3.beast2_stream import _header_length
    from e3.beast2_type import canonical_header, walk_type

    rng = random.Random(5)
    made = 0
    for _ in range(400):
        t = _random_type(rng, rng.randint(1, 5))
        data = _header_of(t)
        head = data[: _header_length(data)]
        sketch = walk_type(head)
        if sketch is not None:
            assert canonical_header(sketch) == head, east.format_type(t, east=True)
            made += 1
    assert made > 200


def test_the_runtime_free_type_reader_declines_what_it_does_not_know():
    inner_tree = east.StructType([("t", TREE), ("n", east.IntegerType)])
    t = east.ArrayType(east.IntegerType)
    from east.serialization.beast2 import encode_beast2_with_header_for

    declined = [
        east.encode(east.coerce({"t": east.variant("leaf", 1), "n": 1}, inner_tree), inner_tree),  # recursive inside
        encode_beast2_with_header_for(t, version=4)(east.coerce([1], t)),  # container version 4
        east.encode(east.parse_type("Integer"), east.TYPE_OF_TYPE),  # a well-known type (kind 1)
        _header_of(east.IntegerType)[:11],  # cut inside the header
        b"junk",
    ]
    for data in declined:
        assert type_text(data) is None, data[:16].hex()


@pytest.mark.parametrize("kind", ["running", "success", "failed", "error"])
def test_execution_records_built_with_plain_constructors_encode_as_with_easts_general_ones(kind):
    from e3.storage.records import Record
    from e3.model.types import ExecutionStatusType

    t0, t1 = datetime.datetime(2026, 1, 1, tzinfo=UTC), datetime.datetime(2026, 1, 2, tzinfo=UTC)
    rec = Record(kind, "e" * 36, ("ab" * 32, "cd" * 32), t0, t1, output_hash="ef" * 32, exit_code=3, message="boom",
                 pid=12, pid_start_time=34, boot_id="b" * 36)
    value = rec.to_east()
    fields = {k: value.value[k] for k in value.value.keys()}
    general = east.variant(kind, east.struct(fields))
    assert east.encode(value, ExecutionStatusType) == east.encode(general, ExecutionStatusType)
    assert Record.from_east(east.decode(east.encode(value, ExecutionStatusType))[1]).kind == kind
