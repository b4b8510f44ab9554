"""A warm worker process of e3.exec.pool: East loaded once, tasks run in-process one after another.

Started as `python -m e3.exec.pool_worker RFD WFD TFD [PLATFORM...]`: it reads
requests from RFD and answers on WFD in the frames of e3.exec.pool_protocol,
which also says what each message means. Before its first task it imports the
East runtime and the named platform packages, then says it is ready. For each
request it takes the request's token (a pipelined one, `after`, has none: it
takes the output of the request before it, or is skipped), opens the task's
log, runs the execution through e3.exec.invocation and answers; with `record` it also writes the
execution's terminal record, after the answer unless told `record_first`; the
log of such a task is closed before its record, and one that printed nothing
makes no log file on its task_id's first execution (e3.storage.logs): whether
it is the first, the record's own creation tells (its pointer is made only if
there is none), and the log's file is made before a record is replaced. It exits
when RFD reaches end of file. Its stdout is pointed at its stderr: output a
task prints at C level must never mix into the pool owner's stdout.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

from e3.errors import E3Error
from e3.exec.pool_protocol import FrameReader, take_token, write_frame
from e3.storage import records


def serve(rfd: int, wfd: int, tfd: int, preload: list[str]) -> int:
    from e3.exec import invocation
    from e3.storage import identity, logs
    from e3.storage.files import storage_error
    from e3.storage.repository import Repository

    invocation.preload(preload)
    repos: dict[str, Repository] = {}
    write_frame(wfd, {"ready": os.getpid()})
    requests = FrameReader(rfd)
    last: tuple[int, str | None, bool] = (0, None, False)
    """The last request read: its id, its output if it succeeded (or was cached), and whether it was taken back."""
    while True:
        req = requests.read()
        if req is None:
            return 0
        rid = req["id"]
        after = req.get("after")
        if after is not None:  # pipelined: it follows the request just before it, without a token
            if last[0] != after or last[2]:  # that one was taken back: so is this one
                write_frame(wfd, {"id": rid, "skipped": True})
                last = (rid, None, True)
                continue
            if last[1] is None:  # that one did not succeed: this one does not run
                write_frame(wfd, {"id": rid, "outcome": ["skipped", None, None, None]})
                last = (rid, None, False)
                continue
        elif not req.get("direct") and not take_token(tfd):  # the pool took it back for a worker that became free
            write_frame(wfd, {"id": rid, "skipped": True})
            last = (rid, None, True)
            continue
        root = req["repo"]
        repo = repos.get(root)
        if repo is None:
            repo = repos[root] = Repository(root)
        inputs = list(req["inputs"])
        if after is not None:
            inputs = [last[1] if h is None else h for h in inputs]
        task_id = req.get("task_id") or identity.task_id(req["task"], inputs)
        if req.get("memo"):  # the scheduler did not look: the memo is checked here, as it would have
            reused = records.reusable_output(repo, records.summary(repo, task_id))
            if reused is not None:
                write_frame(wfd, {"id": rid, "outcome": ["cached", reused, None, None]})
                last = (rid, reused, False)
                continue
        log = None
        bounds = bool(req.get("log_start_end", True))
        recorded = req.get("record") is not None
        # Answered before its record (below): the log is closed after the answer too.
        late = recorded and not req.get("record_first")
        if req.get("log", True):
            try:
                # Recorded here: a task that prints nothing makes no log file on its first run, its
                # record says all it would hold (e3.storage.logs); the log is closed before the
                # record is written, and a kill between the two runs the task again.
                log = logs.open_log(
                    repo, task_id, req.get("execution_id") if bounds else None, deferred=recorded, recorded=recorded and bounds
                )
            except OSError as e:  # a full disk: fail this execution, keep the worker
                last = (rid, None, False)
                message = str(storage_error(e, logs.log_path(repo, task_id)))
                write_frame(wfd, {"id": rid, "outcome": ["error", None, None, message]})
                if req.get("record") is not None:
                    write_frame(wfd, {"id": rid, "recorded": None})  # the pool owner records it
                continue
        try:
            outcome = _execute(invocation, repo, req, inputs, log, wfd, rid)
            if log is not None and bounds:
                try:
                    log.end(outcome.status)
                except OSError:
                    pass  # the outcome stands; a full disk may refuse the log's last line
        except BaseException:
            _close_log(log)
            raise
        answer = {"id": rid, "outcome": [outcome.status, outcome.output_hash, outcome.exit_code, outcome.message]}
        last = (rid, outcome.output_hash if outcome.status == "success" else None, False)
        if late:  # answer first: the tasks it releases start on another worker while this one records
            write_frame(wfd, answer)
            # The log before "recorded": the run counts a task done once both are written.
            held = _close_log(log, recorded)
            write_frame(wfd, {"id": rid, "recorded": _record(repo, req, task_id, inputs, outcome, held)})
            continue
        held = _close_log(log, recorded)
        if req.get("record") is None:
            write_frame(wfd, answer)
        else:  # the pool has other work queued: no one waits on this answer alone
            answer["recorded"] = _record(repo, req, task_id, inputs, outcome, held)
            write_frame(wfd, answer)


def _close_log(log, recorded: bool = False):
    """Close the log; for an execution recorded next, the function that makes a silent one's
    file if the task_id has a record already (LogWriter.close_before_record), or None."""
    if log is None:
        return None
    try:
        if recorded:
            held = log.close_before_record()
            return None if held is None else lambda: _quietly(held)
        log.close()
    except OSError:
        pass  # the outcome stands; a full disk may refuse the log's last records
    return None


def _quietly(make) -> None:
    try:
        make()
    except OSError:
        pass  # as in _close_log


def _record(repo, req: dict, task_id: str, inputs: list[str], outcome, held=None) -> str | None:
    """Write the execution's terminal record; None if it could not be (the pool owner writes it then).
    `held` makes a silent execution's log file before a record it replaces (see _close_log)."""
    try:
        started = datetime.fromtimestamp(float(req["record"]), timezone.utc)
        rec = records.terminal(req["execution_id"], inputs, outcome, started)
        return records.write(repo, task_id, rec, durable=bool(req.get("durable", True)), before_replace=held)
    except (E3Error, OSError, ValueError, TypeError, KeyError):
        if held is not None:  # the pool owner records it: the log has its file, as it would have had
            held()
        return None


def _execute(invocation, repo, req: dict, inputs: list[str], log, wfd: int, rid: int):
    try:
        return invocation.execute(
            repo,
            req["task"],
            inputs,
            force_spawn=bool(req.get("force_spawn")),
            timeout=req.get("timeout"),
            log=log,
            on_spawn=lambda pgid: write_frame(wfd, {"id": rid, "pgid": pgid}),
            durable=bool(req.get("durable", True)),
            command_ir=req.get("command"),
        )
    except OSError as e:  # the log refused a write (a deferred one is made at the first output): a full disk
        from e3.storage.files import storage_error

        where = log.path if log is not None else repo.root
        return invocation.Outcome("error", message=str(storage_error(e, where)))
    except Exception as e:  # a bug of ours: fail this execution, keep the worker
        message = f"internal error: {type(e).__name__}: {e}"
        if log is not None:
            log.write("stderr", f"e3: {message}\n".encode())
        return invocation.Outcome("error", message=message)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the pool's thread that started it goes (owner killed)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the owner was already gone before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rfd, wfd, tfd = int(argv[0]), int(argv[1]), int(argv[2])
    os.dup2(2, 1)
    _die_with_parent()
    try:
        code = serve(rfd, wfd, tfd, argv[3:])
    except KeyboardInterrupt:  # the pool owner's Ctrl-C reached our process group too; it decides
        return 130
    except BrokenPipeError:
        code = 0
    # Every answer and record is written: skip tearing down the interpreter and the East
    # runtime (~0.1 s), which the pool owner would otherwise wait for at the end of each run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
