"""e3 convert: values between .east, JSON and Beast2, from files or stdin, to stdout or a file."""
from __future__ import annotations

from e3_testing.commands import assert_one_line_error, run, write
from test_objects import NUMBERS_BEAST2, unwritable

ARRAY = "Array<Integer>"


def test_convert_east_to_json_with_a_type(tmp_path):
    (tmp_path / "n.east").write_text("[1, 2, 3]")
    assert run("e3", "convert", tmp_path / "n.east", "--type", ARRAY, "--to", "json").out == '["1","2","3"]\n'


def test_convert_beast2_takes_the_type_from_its_header_and_prints_east_by_default(tmp_path):
    (tmp_path / "n.beast2").write_bytes(NUMBERS_BEAST2)
    assert run("e3", "convert", tmp_path / "n.beast2").out == "[1, 2, 3]\n"


def test_convert_to_beast2_writes_the_canonical_bytes(tmp_path):
    (tmp_path / "n.json").write_text('["1", "2", "3"]')
    assert run("e3", "convert", tmp_path / "n.json", "--type", ARRAY, "--to", "beast2").stdout == NUMBERS_BEAST2


def test_convert_reads_stdin_when_no_input_is_given():
    assert run("e3", "convert", "--to", "json", input=NUMBERS_BEAST2).out == '["1","2","3"]\n'
    assert run("e3", "convert", "-", "--type", ARRAY, input="[1, 2, 3]").out == "[1, 2, 3]\n"


def test_convert_from_overrides_the_extension(tmp_path):
    (tmp_path / "n.txt").write_text('["1", "2", "3"]')
    assert run("e3", "convert", tmp_path / "n.txt", "--from", "json", "--type", ARRAY).out == "[1, 2, 3]\n"


def test_convert_o_writes_the_file_in_the_format_of_its_extension(tmp_path):
    (tmp_path / "n.east").write_text("[1, 2, 3]")
    r = run("e3", "convert", tmp_path / "n.east", "--type", ARRAY, "-o", tmp_path / "n.beast2")
    assert r.out == "" and (tmp_path / "n.beast2").read_bytes() == NUMBERS_BEAST2
    run("e3", "convert", tmp_path / "n.beast2", "-o", tmp_path / "out.txt", "--to", "json")
    assert (tmp_path / "out.txt").read_text() == '["1","2","3"]\n'


def test_convert_o_replaces_an_existing_file_and_leaves_no_temporary(tmp_path):
    (tmp_path / "out.json").write_text("old")
    run("e3", "convert", "-o", tmp_path / "out.json", input=NUMBERS_BEAST2)
    assert (tmp_path / "out.json").read_text() == '["1","2","3"]\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_convert_type_must_match_a_beast2_header(tmp_path):
    assert run("e3", "convert", "--type", ARRAY, input=NUMBERS_BEAST2).out == "[1, 2, 3]\n"
    r = run("e3", "convert", "--type", "String", input=NUMBERS_BEAST2, expect=128)
    assert_one_line_error(r, "<stdin>", "has type Array<Integer>, expected String")


# ---------------------------------------------------------------- bad input


def test_convert_refuses_bytes_that_are_not_beast2(tmp_path):
    (tmp_path / "r.bin").write_bytes(bytes(range(256)))
    assert_one_line_error(run("e3", "convert", tmp_path / "r.bin", expect=128), "r.bin", "not beast2 data")


def test_convert_refuses_a_truncated_value():
    r = run("e3", "convert", input=NUMBERS_BEAST2[:-4], expect=128)
    assert_one_line_error(r, "malformed beast2")


def test_convert_refuses_east_text_that_does_not_match_the_type(tmp_path):
    (tmp_path / "bad.east").write_text('["a"]')
    r = run("e3", "convert", tmp_path / "bad.east", "--type", ARRAY, expect=128)
    assert_one_line_error(r, "bad.east", "invalid .east value for type Array<Integer>")


def test_convert_refuses_text_that_is_not_utf8(tmp_path):
    (tmp_path / "bad.east").write_bytes(b"\xff\xfe")
    assert_one_line_error(run("e3", "convert", tmp_path / "bad.east", "--type", ARRAY, expect=128), "not utf-8")


def test_convert_text_without_a_type_is_a_usage_error(tmp_path):
    (tmp_path / "n.east").write_text("[1]")
    assert_one_line_error(run("e3", "convert", tmp_path / "n.east", expect=2), "needs a type")


def test_convert_bad_type_spec_is_a_usage_error():
    assert_one_line_error(run("e3", "convert", "--type", "Array<", input="[]", expect=2), "invalid type")


def test_convert_missing_input_file_is_fatal(tmp_path):
    assert_one_line_error(run("e3", "convert", tmp_path / "nope.east", expect=128), "cannot read", "no such file")


def test_convert_into_an_unwritable_directory_fails_and_leaves_the_old_file(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "n.json").write_text("old")
    undo = unwritable(out_dir)
    try:
        r = run("e3", "convert", "-o", out_dir / "n.json", input=NUMBERS_BEAST2, expect=128)
    finally:
        undo()
    assert_one_line_error(r, "cannot write", "n.json")
    assert sorted(p.name for p in out_dir.iterdir()) == ["n.json"] and (out_dir / "n.json").read_text() == "old"


def test_convert_csv_round_trips_every_kind_of_cell(tmp_path):
    spec = "Array<Struct{i: Integer, f: Float, s: String, b: Boolean, d: DateTime, o: Option<Integer>, x: Blob, a: Array<Integer>}>"
    text = 'i,f,s,b,d,o,x,a\n-3,2.5,"q ""quoted""",true,2024-01-02T03:04:05.000Z,,0x00ff,"[1, 2]"\n'
    east_text = run("e3", "convert", write(tmp_path, "t.csv", text), "--type", spec, "--to", "east").out
    assert east_text == '[(i=-3, f=2.5, s="q \\"quoted\\"", b=true, d=2024-01-02T03:04:05.000, o=.none, x=0x00ff, a=[1, 2])]\n'
    assert run("e3", "convert", write(tmp_path, "t.east", east_text), "--type", spec, "--to", "csv").out == text
