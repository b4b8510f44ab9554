"""Execution records encoded from a template (e3.storage.record_bytes) are byte for byte the
East runtime's encoding of the same record, for every kind and for random fields; a record the
template does not write goes to the runtime, which encodes (or refuses) it as before."""
from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone

import pytest

from e3.storage import record_bytes, records
from e3.storage.records import Record

ALPHABET = string.ascii_letters + string.digits + " é\u2603\U0001F600\ud800\n\x00"


def _text(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(n))


def _time(rnd: random.Random) -> datetime:
    moment = datetime(1950, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=rnd.randrange(0, 4 * 10**15))
    return moment.astimezone(timezone(timedelta(hours=rnd.randrange(-12, 13)))) if rnd.random() < 0.2 else moment


def _record(rnd: random.Random) -> Record:
    kind = rnd.choice(records.KINDS)
    inputs = tuple(_text(rnd, rnd.choice([0, 1, 64, 200])) for _ in range(rnd.choice([0, 1, 2, 5, 140])))
    fields = dict(kind=kind, execution_id=_text(rnd, rnd.choice([0, 32, 300])), input_hashes=inputs, started_at=_time(rnd))
    if kind != "running":
        fields["completed_at"] = _time(rnd)
    if kind == "success":
        fields["output_hash"] = _text(rnd, 64)
    elif kind == "failed":
        fields["exit_code"] = rnd.choice([0, 1, -1, 63, 64, -65, 255, 8191, 8192, rnd.randrange(-(2**63), 2**63)])
    elif kind == "error":
        fields["message"] = _text(rnd, rnd.choice([0, 10, 127, 128, 20000]))
    else:
        fields.update(pid=rnd.randrange(0, 2**22), pid_start_time=rnd.randrange(0, 2**45), boot_id=_text(rnd, 36))
    return Record(**fields)


def test_template_agrees_with_the_runtime_on_random_records():
    rnd = random.Random(20261208)
    for _ in range(3000):
        rec = _record(rnd)
        assert records.encode_record(rec) == records._runtime_encode(rec), rec
    assert record_bytes._head is not None  # the template was used, not only the runtime


def test_times_now_and_near_the_epoch():
    base = records.now()
    for ms in list(range(-3000, 3000, 7)) + [2**14, 2**21, 2**28, 2**35]:
        for micro in (0, 1, 499, 500, 999):
            t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms, microseconds=micro)
            rec = Record("success", "e", ("a" * 64,), t, base + timedelta(milliseconds=ms), output_hash="b" * 64)
            assert records.encode_record(rec) == records._runtime_encode(rec)


def test_a_record_the_template_does_not_write_is_the_runtimes():
    t = records.now()
    big = Record("failed", "e", (), t, t, exit_code=2**63)  # past 64 bits: the runtime refuses it
    with pytest.raises(Exception) as template:
        records.encode_record(big)
    with pytest.raises(Exception) as runtime:
        records._runtime_encode(big)
    assert type(template.value) is type(runtime.value)
    naive = Record("success", "e", ["a" * 64], datetime(2026, 1, 2, 3, 4, 5), t, output_hash="b" * 64)
    assert records.encode_record(naive) == records._runtime_encode(naive)


def test_a_template_that_disagrees_is_never_used(monkeypatch):
    t = records.now()
    rec = Record("success", "e", ("a" * 64,), t, t, output_hash="b" * 64)
    monkeypatch.setattr(record_bytes, "_head", None)
    monkeypatch.setattr(record_bytes, "_checked", False)

    def other_runtime(r: Record) -> bytes:  # a runtime that writes these records otherwise
        return records._runtime_encode(r) + b"\x00"

    assert record_bytes.encode(rec, other_runtime) == records._runtime_encode(rec) + b"\x00"
    assert record_bytes._checked and record_bytes._head is None
