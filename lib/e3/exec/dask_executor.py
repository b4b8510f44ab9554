"""The Dask executor of `e3 start`: the work goes to a Dask cluster, everything else stays here.

`e3 start --executor dask://HOST:PORT` (or `tcp://…`, or `e3.executor` in the
repository's config) connects to a Dask scheduler. The run is the same as with
the local warm pool: this process plans, checks the memo, claims each execution
on the durable queue, writes its log and its record, stores its output and
commits it to the workspace (e3.exec.queue_executor). Only the execution itself runs
on the cluster: `DaskPool` has the local pool's interface (submit a
TaskRequest, get a Future of its Outcome; wait; cancel; shutdown), and sends
each request to e3.exec.dask_worker.run.

Objects travel by hash. A task names its command IR and its inputs; an object
the cluster does not hold yet is read from the repository and scattered once
(one scatter call for every object a batch of submissions lacks), and a task's
result stays on the worker that computed it, where Dask finds it for the tasks
that read that output. Both are kept for reuse while they fit in `CACHE_BYTES`
(oldest dropped first). The workers read nothing of the repository.

Faults. A worker that dies mid-task: Dask runs the task again on another
worker (up to its `allowed-failures`), and only the result that comes back is
recorded. An object lost with a worker, or that arrives damaged (checked
against its hash on the worker), is sent again and the execution resubmitted,
up to `ATTEMPTS` times. A scheduler that cannot be reached, a cluster without
workers, or a worker without the East runtime (or another version of it) is
one error before anything runs, naming the worker. A scheduler lost mid-run
(its connection breaks) ends the run at once: Dask cancels everything a client
had on the cluster when it loses its scheduler, and a scheduler that comes back
knows none of it, so there is nothing to reconnect for. Every execution on the
cluster ends in error saying so (in its log and, by the caller, its record),
and the next call raises ExecutorUnavailable naming the scheduler; the run keeps
what finished and the next `e3 start` runs the rest. The workers, which close
when they lose their scheduler, kill what they spawned (dask_worker.Warm).

Logs: the worker sends each chunk of a task's output as a Dask event
(e3.exec.dask_worker.TOPIC); a handler here appends it to `logs/<TASK_ID>.eastl`
while the task runs, so `e3 logs --follow` works as with the local pool.
"""
from __future__ import annotations

import concurrent.futures
import logging
import queue as queues
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from e3.errors import E3Error, ExecutorUnavailable, UsageError
from e3.exec.executors import Pumped
from e3.exec.invocation import Outcome

if TYPE_CHECKING:
    from e3.exec.executors import TaskRequest
    from e3.storage.repository import Repository

SCHEMES = {"dask": "tcp", "tcp": "tcp", "tls": "tls"}
"""Executor address schemes and the Dask protocol each means."""
DEFAULT_PORT = 8786
CONNECT_TIMEOUT = 10.0
"""Seconds to reach the scheduler (a refused connection fails at once)."""
WORKERS_TIMEOUT = 30.0
"""Seconds to wait for a first worker when the scheduler has none."""
CACHE_BYTES = 512 << 20
"""Objects and task results kept on the cluster for tasks to come, by total size."""
ATTEMPTS = 3
"""Submissions of one execution whose objects were lost or damaged on the way, before it is an error."""
CLOSE_TIMEOUT = 2.0
"""Seconds to let a client that lost its scheduler stop (it stops reconnecting, sends nothing)."""


# ---------------------------------------------------------------- addresses


def parse_address(text: str) -> str | None:
    """The Dask address of an executor setting (`dask://host:port`, `tcp://…`, `tls://…`); None for `local`."""
    text = text.strip()
    if text in ("", "local"):
        return None
    parts = urlsplit(text)
    protocol = SCHEMES.get(parts.scheme)
    if protocol is None or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"invalid executor {text!r} (expected local, dask://HOST:PORT or tcp://HOST:PORT)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise UsageError(f"invalid executor {text!r} (bad port)") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{protocol}://{host}:{port}"


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ExecutorUnavailable("the dask executor needs Dask: pip install 'e3-py[dask]'") from None
    return distributed


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A Dask client of the scheduler at `address`; ExecutorUnavailable (one line) if it cannot be reached."""
    distributed = _import_distributed()
    _quiet()
    parts = urlsplit(address)
    try:  # a plain connection first: "refused" is known at once, not after the client's retries
        socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise ExecutorUnavailable(f"cannot reach dask scheduler {address}: {why.lower()}") from None
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ExecutorUnavailable(f"cannot reach dask scheduler {address}: {_one_line(e)}") from None


def _quiet() -> None:
    """The library never prints: Dask's own log lines (a reconnection, a lost worker) stay out of the
    user's terminal; what goes wrong reaches the caller as an error."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("distributed", "tornado")]
    for name in ["distributed", "tornado", *names]:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def check_workers(client, wait: float = WORKERS_TIMEOUT) -> int:
    """Every worker can run e3 tasks (loaded East now) with this East version; return their threads in all."""
    from importlib.metadata import version

    from e3.exec import dask_worker

    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=wait)
    except TimeoutError:
        raise ExecutorUnavailable(f"dask scheduler {address} has no workers (waited {wait:g}s)") from None
    answers = client.run(dask_worker.check, on_error="return")
    ours = version("elaraai-east-py")
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            raise ExecutorUnavailable(f"dask worker {worker} cannot run e3 tasks: {_one_line(answer)}")
        if answer.get("east") != ours:
            raise ExecutorUnavailable(f"dask worker {worker} has elaraai-east-py {answer.get('east')}, this e3 uses {ours}")
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sum(w.get("nthreads", 1) for a, w in workers.items() if a in answers) or 1


def _one_line(e: BaseException) -> str:
    """The first line of an error, named by its class unless it is one of ours (said in words already)."""
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(e, RuntimeError) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# ---------------------------------------------------------------- the pool


@dataclass
class _Job:
    request: "TaskRequest"
    future: concurrent.futures.Future
    execution_id: str
    task_id: str
    command_ir: str
    objects: list[str]
    log: Any = None
    """The task's log writer while it runs (events from the workers are appended to it)."""
    worker: str | None = None
    """The worker whose output the log has last seen."""
    dask: Any = None
    key: str = ""
    """The Dask key of its current submission."""
    attempts: int = 0
    answer: dict | None = None
    """The worker's answer, when it came with its events (a small output)."""


class DaskPool(Pumped):
    """The local pool's interface over a Dask cluster (see the module text)."""

    def __init__(self, repo: "Repository", address: str, *, cache_bytes: int = CACHE_BYTES, client=None):
        from concurrent.futures import ThreadPoolExecutor

        self.repo = repo
        self.address = address
        self.cache_bytes = cache_bytes
        self.client = client if client is not None else connect(address)
        from distributed.client import ClosedClientError

        self._errors = (OSError, TimeoutError, ClosedClientError)
        """What a call to the cluster raises when its scheduler is gone (comms closed, timed out)."""
        self._lost: str | None = None
        """Why the cluster cannot be used any more, once the scheduler is lost (see `_lose`)."""
        self.run_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._outbox: list[_Job] = []
        self._jobs: dict[str, _Job] = {}
        """Dask key -> job, for what is on the cluster."""
        self._live: dict[str, _Job] = {}
        """execution id -> job not yet ended (its events are taken in)."""
        self._woken: "queues.SimpleQueue[tuple[str, str | None]]" = queues.SimpleQueue()
        """(what, Dask key): finished on the cluster, due (timeout), or settled by the writer."""
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="e3-dask-writer")
        """Stores outputs, closes logs and writes records while this thread sends and receives."""
        self._writing: dict[concurrent.futures.Future, concurrent.futures.Future] = {}
        """Outcome future -> the writer's work on it, for jobs the writer is settling."""
        self._objects: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        """object hash -> (Dask future holding it, size): scattered objects and task results."""
        self._cached = 0
        self._scatters = 0
        self.scattered_bytes = 0
        """Bytes of objects sent to the cluster from this process (each object once while it is kept there)."""
        self._closing = False
        try:
            self.size = check_workers(self.client)
            from e3.exec import dask_worker

            self.client.register_plugin(dask_worker.Warm())
            self.client.subscribe_topic(dask_worker.TOPIC, self._on_event)
        except self._errors as e:  # the scheduler went away as we started
            self._close_client(lost=True)
            self._writer.shutdown()
            raise ExecutorUnavailable(f"lost the dask scheduler {address}: {_one_line(e)}") from None
        except BaseException:
            self._close_client()
            self._writer.shutdown()
            raise

    def __enter__(self) -> "DaskPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(cancel=exc[0] is not None)

    # ------------------------------------------------------------ the caller's side

    def submit(self, request: "TaskRequest") -> concurrent.futures.Future:
        from e3.storage import identity, logs

        if self._closing:
            raise RuntimeError("dask pool is shut down")
        if self._lost is not None:
            raise ExecutorUnavailable(self._lost)
        command_ir, unreadable = request.command_ir, None
        if command_ir is None:
            from e3.model.task import load_task

            try:
                command_ir = load_task(self.repo.objects, request.task_hash).command_ir
            except E3Error as e:  # a damaged task object fails its task, as in the local pool
                command_ir, unreadable = "", str(e)
        eid = request.execution_id or uuid.uuid4().hex
        task_id = request.task_id or identity.task_id(request.task_hash, list(request.input_hashes))
        objects = [] if unreadable else list(dict.fromkeys([command_ir, *request.input_hashes]))
        from e3.exec.executors import DrivenFuture

        job = _Job(request, DrivenFuture(self), eid, task_id, command_ir, objects)
        job.future.set_running_or_notify_cancel()
        job.future.began_at = time.monotonic()  # the cluster does not say when a worker starts it
        if request.log:
            try:
                job.log = logs.open_log(self.repo, task_id, eid if request.log_start_end else None)
            except OSError as e:
                self._end(job, Outcome("error", message=f"cannot open the task's log: {e}"))
                return job.future
        if unreadable is not None:
            self._end(job, Outcome("error", message=unreadable), say=True)
            return job.future
        with self._lock:
            self._live[eid] = job
        self._outbox.append(job)
        return job.future

    def pump(self, timeout: float | None) -> None:
        """Send what was submitted; wait up to `timeout` seconds for news and act on all that came.

        ExecutorUnavailable when it finds the scheduler lost (once: every execution sent ended then)."""
        self._check()
        self._send()
        for future, w in [(f, w) for f, w in self._writing.items() if w.done()]:
            del self._writing[future]
            w.result()  # a bug of ours in the writer's thread surfaces here
        if not self._jobs and not self._writing:
            time.sleep(0.05 if timeout is None else min(timeout, 0.05))
            return
        woken = []
        try:
            woken.append(self._woken.get(timeout=timeout if timeout is None or timeout > 0 else 0.0001))
        except queues.Empty:
            return
        while True:
            try:
                woken.append(self._woken.get_nowait())
            except queues.Empty:
                break
        fetch = []
        for what, key in woken:
            job = self._jobs.get(key)
            if job is None:
                continue  # settled, cancelled or timed out meanwhile
            if what == "due":
                self._timed_out(job)
            elif job.dask.status == "finished":
                if job.answer is not None:
                    self._finished(job, job.answer)
                else:
                    fetch.append(job)
            elif job.dask.status == "error":
                self._errored(job)
            else:  # cancelled by the cluster, not by us: an object it reads was lost with a worker
                self._check()  # ...or the scheduler is gone, and every task with it
                self._again(job, "a dask worker was lost with objects this task reads")
        if fetch:  # larger outputs: one gather for all
            try:
                answers = self.client.gather([job.dask for job in fetch])
            except Exception:  # noqa: BLE001 - one was lost meanwhile: take them one by one
                self._check()
                answers = [_result(job.dask) for job in fetch]
            for job, answer in zip(fetch, answers):
                if self._jobs.get(job.key) is not job:
                    continue
                if answer is None:
                    self._again(job, "its result was lost on the cluster")
                else:
                    self._finished(job, answer)
        self._send()  # what is sent again

    def cancel(self, future) -> bool:
        """Cancel an execution: dropped if not sent yet, else cancelled on the cluster (a spawned task is killed)."""
        for job in self._outbox:
            if job.future is future:
                self._outbox.remove(job)
                self._end(job, Outcome("cancelled", message="cancelled"), say=True)
                return True
        for job in list(self._jobs.values()):
            if job.future is future:
                self._stop([job])
                self._end(job, Outcome("cancelled", message="cancelled"), say=True)
                return True
        settling = self._writing.get(future)
        if settling is not None:  # it ended already: its outcome and record are being written
            concurrent.futures.wait([settling])
        return False

    def shutdown(self, cancel: bool = False) -> None:
        """Disconnect once what was submitted is done; with `cancel`, cancel it first. The cluster stays up."""
        if self._closing:
            return
        if cancel:
            jobs, sent = list(self._outbox), list(self._jobs.values())
            self._outbox.clear()
            self._stop(sent)
            for job in jobs + sent:
                self._end(job, Outcome("cancelled", message="cancelled"), say=True)
        else:
            while self._outbox or self._jobs:
                self.pump(1.0)
        self._closing = True
        self._writer.shutdown(wait=True)
        self._objects.clear()
        try:
            from e3.exec import dask_worker

            if self.client.status == "running":
                self.client.unsubscribe_topic(dask_worker.TOPIC)
        except Exception:  # noqa: BLE001 - the cluster may be gone already: nothing of ours is left there
            pass
        self._close_client()

    def _close_client(self, lost: bool = False) -> None:
        try:
            if lost:
                self.client.close(timeout=CLOSE_TIMEOUT)
            else:
                self.client.close()
        except Exception:  # noqa: BLE001 - a client that lost its scheduler may not close cleanly; it holds nothing
            pass

    def _check(self) -> None:
        """`_lose` the cluster once the client has lost its scheduler: its connection broke (Dask is
        reconnecting, having cancelled every future), or it gave up."""
        if self._lost is None and not self._closing and self.client.status != "running":
            self._lose()

    def _lose(self) -> NoReturn:
        """The scheduler is gone, and everything this run had on the cluster with it (see the module
        text): end every execution sent or waiting to be, in error, its log saying why; stop the
        client (no reconnecting); raise ExecutorUnavailable. From here on the pool runs nothing."""
        message = f"lost the dask scheduler {self.address}"
        self._lost = f"{message} mid-run; what finished is kept, and e3 start again runs the rest"
        jobs = [*self._outbox, *self._jobs.values()]
        self._outbox.clear()
        self._jobs.clear()
        self._objects.clear()
        self._cached = 0
        for job in jobs:
            self._end(job, Outcome("error", message=message), say=True)
        self._close_client(lost=True)
        raise ExecutorUnavailable(self._lost)

    # ------------------------------------------------------------ sending

    def _send(self) -> None:
        """Submit what waits in the outbox, in one message, after one scatter of the objects the cluster lacks."""
        if not self._outbox:
            return
        from e3.exec import dask_worker

        self._check()
        jobs, self._outbox = self._outbox, []
        try:
            unreadable = self._scatter({h for job in jobs for h in job.objects if h not in self._objects})
        except self._errors:
            self._outbox[:0] = jobs
            self._lose()
        if unreadable:  # a task whose input (or command) is damaged fails naming it; the others go on
            for job in [job for job in jobs if any(h in unreadable for h in job.objects)]:
                jobs.remove(job)
                self._end(job, Outcome("error", message=next(unreadable[h] for h in job.objects if h in unreadable)), say=True)
            if not jobs:
                return
        specs, deps, keys = [], [], []
        for job in jobs:
            for h in job.objects:
                self._objects.move_to_end(h)
            r = job.request
            job.attempts += 1
            job.answer = None
            job.key = f"e3-run-{job.execution_id}-{job.attempts}"
            specs.append({
                "run": self.run_id,
                "execution_id": job.execution_id,
                "attempt": job.attempts,
                "task_hash": r.task_hash,
                "command_ir": job.command_ir,
                "inputs": list(r.input_hashes),
                "objects": job.objects,
                "timeout": r.timeout,
                "force_spawn": r.force_spawn,
                "log": r.log,
            })
            deps.append([self._objects[h][0] for h in job.objects])
            keys.append(job.key)
        try:
            futures = self.client.map(dask_worker.run, specs, deps, key=keys, pure=False)
        except self._errors:
            self._outbox[:0] = jobs
            self._lose()
        for job, fut in zip(jobs, futures):
            job.dask = fut
            self._jobs[job.key] = job
            fut.add_done_callback(lambda f, key=job.key: self._woken.put(("done", key)))
        self._trim()

    def _scatter(self, missing: set[str]) -> dict[str, str]:
        """Send these objects to the cluster, each read verified; return hash -> why for those
        that cannot be read (damaged or missing), which are not sent."""
        unreadable: dict[str, str] = {}
        if not missing:
            return unreadable
        # Keys of their own each time: an object sent again after it was lost with a worker must
        # not meet the cancelled state its old key may still have in the client.
        self._scatters += 1
        names, data = {}, {}
        for h in sorted(missing):
            name = f"e3-object-{h}-{self._scatters}"
            try:
                data[name] = self.repo.objects.read(h)
            except E3Error as e:
                unreadable[h] = str(e)
                continue
            names[name] = h
        if not data:
            return unreadable
        futures = self.client.scatter(data, hash=False, direct=True)  # the caller takes its errors as the scheduler lost
        self.scattered_bytes += sum(len(d) for d in data.values())
        for name, fut in futures.items():
            self._keep(names[name], fut, len(data[name]))
        return unreadable

    def _keep(self, h: str, fut, size: int) -> None:
        old = self._objects.pop(h, None)
        if old is not None:
            self._cached -= old[1]
        self._objects[h] = (fut, size)
        self._cached += size

    def _trim(self) -> None:
        """Forget the oldest objects past the budget (tasks sent already keep what they read)."""
        while self._cached > self.cache_bytes and len(self._objects) > 1:
            _, (_, size) = self._objects.popitem(last=False)
            self._cached -= size

    def _forget(self, hashes) -> None:
        for h in hashes:
            old = self._objects.pop(h, None)
            if old is not None:
                self._cached -= old[1]

    # ------------------------------------------------------------ what comes back

    def _finished(self, job: _Job, answer: dict) -> None:
        del self._jobs[job.key]
        if answer.get("lost"):  # an object arrived damaged: send it again
            self._forget(job.objects)
            self._resubmit(job, answer.get("message") or "objects damaged on the way")
            return
        if answer["status"] == "success" and answer["data"] is not None:
            self._keep(answer["output"], job.dask, len(answer["data"]))  # tasks that read it find it there
            self._trim()
        self._writing[job.future] = self._writer.submit(self._settle, job, answer)

    def _settle(self, job: _Job, answer: dict) -> None:
        """(The writer's thread.) Store the output, close the log, give the outcome, then write the record."""
        try:
            if answer["status"] == "success":
                outcome = self._store(job, answer)
            else:  # the worker logged why
                outcome = Outcome(answer["status"], None, answer["exit_code"], answer["message"])
            self._end(job, outcome, say=outcome.status != answer["status"], recorded=False)
        finally:
            self._woken.put(("settled", None))
        r = job.request
        if r.recorded is None or r.recorded.done():
            return
        record = None
        if r.record_started is not None:
            from e3.storage import records

            try:
                rec = records.terminal(job.execution_id, r.input_hashes, outcome, r.record_started)
                record = records.write(self.repo, job.task_id, rec, durable=r.durable)
            except (E3Error, OSError):
                record = None  # the caller writes it
        r.recorded.set_result(record)
        self._woken.put(("recorded", None))

    def _store(self, job: _Job, answer: dict) -> Outcome:
        try:
            output_hash = self.repo.objects.write(answer["data"], durable=job.request.durable)
        except E3Error as e:
            return Outcome("error", message=str(e))
        if output_hash != answer["output"]:
            return Outcome("error", message=f"the output of dask worker {answer['worker']} arrived with other bytes")
        return Outcome("success", output_hash, answer["exit_code"], answer["message"])

    def _errored(self, job: _Job) -> None:
        """The cluster gave up on the task (it was on too many workers that died, or e3 is missing on one)."""
        del self._jobs[job.key]
        try:
            e = job.dask.exception()
        except Exception as ex:  # noqa: BLE001 - whatever the client raises, it is this task's error
            e = ex
        self._end(job, Outcome("error", message=f"dask: {_one_line(e)}"), say=True)

    def _again(self, job: _Job, why: str) -> None:
        del self._jobs[job.key]
        self._forget(job.objects)
        self._resubmit(job, why)

    def _resubmit(self, job: _Job, why: str) -> None:
        if job.attempts >= ATTEMPTS:
            self._end(job, Outcome("error", message=f"dask: {why} ({job.attempts} attempts)"), say=True)
            return
        if job.log is not None:
            try:
                job.log.write("stderr", f"e3: {why}; sending it again\n".encode())
            except OSError:
                pass
        self._outbox.append(job)

    def _timed_out(self, job: _Job) -> None:
        self._stop([job])
        where = f" in dask worker {job.worker}" if job.worker else ""
        message = f"timed out after {job.request.timeout:g}s (it runs on{where} until it returns)"
        self._end(job, Outcome("error", message=message), say=True)

    def _stop(self, jobs: list[_Job]) -> None:
        """Take jobs off the cluster: cancelled there, and a task they spawned killed."""
        from e3.exec import dask_worker

        if not jobs:
            return
        for job in jobs:
            self._jobs.pop(job.key, None)
        try:
            self.client.cancel([job.dask for job in jobs])
            self.client.run(dask_worker.cancel, [job.execution_id for job in jobs], on_error="ignore")
        except Exception:  # noqa: BLE001 - the scheduler is gone, and what ran there with it
            pass

    def _end(self, job: _Job, outcome: Outcome, say: bool = False, recorded: bool = True) -> None:
        """Close the job's log (with the outcome's message when no worker wrote it) and give its outcome.

        With `recorded`, the caller is told that the record is its to write (see TaskRequest.recorded)."""
        with self._lock:
            self._live.pop(job.execution_id, None)
        log, job.log = job.log, None
        if log is not None:
            try:
                if say:
                    log.write("stderr", f"e3: {outcome.message}\n".encode())
                if job.request.log_start_end:
                    log.end(outcome.status)
            except OSError:
                pass  # a full disk may refuse the log's last lines; the outcome stands
            finally:
                log.close()
        if not job.future.done():
            job.future.set_result(outcome)
        if recorded:
            _not_recorded(job.request)

    # ------------------------------------------------------------ events (the client's thread)

    def _on_event(self, event) -> None:
        _, msg = event
        if not isinstance(msg, dict) or msg.get("run") != self.run_id:
            return  # another coordinator's task on the same cluster
        with self._lock:
            job = self._live.get(msg.get("e"))
            if job is None or msg.get("a") != job.attempts:
                return  # ended already (cancelled, timed out), or an earlier submission's
            if "answer" in msg:
                job.answer = msg["answer"]
                return
            worker, moved = msg.get("w"), job.worker
            job.worker = worker
            if msg.get("due"):
                self._woken.put(("due", job.key))
                return
            if job.log is None:
                return
            try:
                if moved is not None and worker != moved:
                    job.log.write("stderr", f"e3: dask worker {moved} was lost; running again on {worker}\n".encode())
                job.log.write(msg["s"], msg["b"])
            except OSError:
                pass


def _result(future) -> dict | None:
    try:
        return future.result()
    except Exception:  # noqa: BLE001 - lost or failed: the caller sends it again
        return None


def _not_recorded(request) -> None:
    if request.recorded is not None and not request.recorded.done():
        request.recorded.set_result(None)
