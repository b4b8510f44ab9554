"""The memo key of an execution: the task object and the exact inputs it ran on.

Like the original engine, `inputs_hash` = SHA-256 of the input hashes joined
by one NUL byte; e3's `task_id` keys that together with the task object hash,
so one id names one (program, inputs) pair and is a safe file name.
"""
from __future__ import annotations

import hashlib
from typing import Sequence


def inputs_hash(input_hashes: Sequence[str]) -> str:
    return hashlib.sha256("\0".join(input_hashes).encode()).hexdigest()


def task_id(task_hash: str, input_hashes: Sequence[str]) -> str:
    # inputs_hash inlined: a no-op run computes one per task
    inputs = hashlib.sha256("\0".join(input_hashes).encode()).hexdigest()
    return hashlib.sha256(f"{task_hash}\0{inputs}".encode()).hexdigest()
