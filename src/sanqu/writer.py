"""Writing vector outputs beside the run: on a second thread, or in a writer process.

The vector stages hand each group of layers to a :class:`Writer` and go on
tracing and gating the next group. Where the writing happens matters:

- **thread** (small study areas): the job runs on a second thread of the run's
  own process. Cheap to start, but pyogrio holds the interpreter lock (GIL)
  while GDAL writes features, so every step of the run's thread that needs the
  interpreter waits for the write: at 10⁸ cells the main thread was off the CPU
  for 16 of its 35 s of tracing (py-spy: waiting in ``take_gil``).
- **process** (large study areas, :data:`PROCESS_CELLS` cells or more): the job
  is pickled to a writer process (:class:`WriterProcess`, a ``python``
  running :func:`main`), which has its own interpreter and lock, so the writes and the
  run's tracing take one core each. The process is started once per Python
  session, when the first large run reaches its vector stages (it imports the
  package while the first group is traced), and serves every later run.

Either way jobs run one at a time and in order, so the files are the same
(byte for byte) whichever way they are written, and a job's error is raised
where the run next waits for it.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .errors import OutputError
from .heap import release_heap
from .study import Timer

#: Study areas of this many cells or more are written by the writer process.
PROCESS_CELLS = 10_000_000

#: The writer process's program (``-c``: ``-m sanqu.writer`` would load this module twice).
_MAIN = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "import sys; from sanqu.writer import main; main(sys.argv[1:])")



class _Call:
    """A job and its arguments, to be run once; the arguments dropped once sent.

    Parameters
    ----------
    job : callable
        A module-level function (pickled by reference).
    args : tuple
        Its arguments (pickled by value).
    """

    def __init__(self, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.job: Callable[..., Any] | None = job
        self.args: tuple[Any, ...] | None = args

    def __call__(self) -> Any:
        assert self.job is not None and self.args is not None
        return self.job(*self.args)

    def __getstate__(self) -> tuple[Any, ...]:
        return self.job, self.args

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.job, self.args = state

    def drop(self) -> None:
        """Let go of the arguments (once the process has them)."""
        self.job = self.args = None


class WriterProcess:
    """A Python process that runs pickled jobs one at a time (:func:`main`).

    Jobs go down one pipe and results (or the job's exception) come back up
    another; the process's standard streams stay its own, so nothing a library
    prints there can garble a message. It ignores Ctrl-C from its start (the run
    decides when it stops) and exits when its job pipe closes. Any failure to
    send a job or read its answer (a half-written message, the process gone)
    ends the process, so no later job is read out of step.
    """

    def __init__(self) -> None:
        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # where `sanqu` is imported from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _MAIN, str(job_r), str(out_w)],
                pass_fds=(job_r, out_w), env=env, stdin=subprocess.DEVNULL)
        except BaseException:
            for fd in (job_w, out_r):
                os.close(fd)
            raise
        finally:
            os.close(job_r)
            os.close(out_w)
        self._jobs: BinaryIO = os.fdopen(job_w, "wb")
        self._results: BinaryIO = os.fdopen(out_r, "rb")
        self._lock = threading.Lock()

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._proc.poll() is None

    def run(self, call: _Call) -> Any:
        """Send ``call`` to the process, drop its arguments here, wait for its result.

        Raises
        ------
        Exception
            The job's own exception, re-raised here.
        OutputError
            When the job cannot be sent or its answer read (the process is then ended).
        """
        with self._lock:
            try:
                pickle.dump(call, self._jobs, protocol=pickle.HIGHEST_PROTOCOL)
                self._jobs.flush()
                call.drop()
                status, value = pickle.load(self._results)
            except Exception as exc:  # noqa: BLE001 - the stream is out of step: end it
                self.terminate()
                code = self.close()
                raise OutputError(f"the writer process stopped (exit code {code}) on "
                                  f"{type(exc).__name__}: {exc}; no output was written"
                                  ) from None
        if status == "error":
            raise value
        return value

    def terminate(self) -> None:
        """End the process now (from any thread) and reap it; a job waiting on it fails."""
        if self.alive():
            self._proc.kill()
            self._proc.wait()

    def close(self) -> int | None:
        """Close both pipes and wait for the process to exit; its exit code."""
        for f in (self._jobs, self._results):
            try:
                f.close()
            except OSError:
                pass
        try:
            return self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()


_process: WriterProcess | None = None
_process_lock = threading.Lock()


def writer_process() -> WriterProcess:
    """The session's writer process, started if there is none (or it died)."""
    global _process
    with _process_lock:
        if _process is None or not _process.alive():
            if _process is not None:
                _process.close()  # its pipes
            _process = WriterProcess()
        return _process


@atexit.register
def _close_process() -> None:
    if _process is not None:
        _process.close()


def _forget_process() -> None:
    """In a forked child: drop the parent's writer process (and close the child's pipe copies)."""
    global _process, _process_lock
    _process_lock = threading.Lock()
    if _process is not None:
        for f in (_process._jobs, _process._results):
            try:
                os.close(f.fileno())
            except (OSError, ValueError):
                pass
    _process = None


os.register_at_fork(after_in_child=_forget_process)


def uses_process(cells: int) -> bool:
    """Whether a study area of ``cells`` cells is written by the writer process.

    Only on POSIX systems, where the process's pipes are inherited by number;
    elsewhere every area is written on a thread.
    """
    return cells >= PROCESS_CELLS and os.name == "posix"


class Writer:
    """Writes one group of layers beside the run while the next group is made.

    One job at a time, in order: a job starts once the previous one is done (the
    caller waits for it, counted as ``export``, before submitting, or after the
    block of :meth:`queued`), so at most two groups are held, the one being
    written and the one being traced and gated. A job's error is
    raised where the caller next waits.

    Parameters
    ----------
    timer : Timer
        Receives the time spent waiting for a job, as ``export``.
    process : bool
        Run the jobs in the writer process (:func:`writer_process`) rather than
        on a thread; a job must then be a module-level function and its
        arguments picklable. The arguments are dropped here once sent.
    """

    def __init__(self, timer: Timer, *, process: bool = False) -> None:
        self._timer = timer
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sanqu-write")
        self._job: Future[Any] | None = None
        self._process = writer_process() if process else None
        self._queueing = False

    def submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``job(*args)`` once the previous job is done; its future.

        The caller waits for the previous job first, except inside :meth:`queued`.
        """
        if not self._queueing:
            self.wait()
        if self._process is None:
            self._job = self._pool.submit(job, *args)
        else:  # the thread sends the job and waits for it, mostly in system calls
            self._job = self._pool.submit(self._process.run, _Call(job, args))
        return self._job

    @contextmanager
    def queued(self) -> Iterator[None]:
        """Inside, :meth:`submit` queues its job behind the running one rather than wait.

        The job then starts by itself as soon as the running one is done, while
        the caller goes on (checking the group being written, say). Leaving the
        block waits for the job that was running on entering it, where
        :meth:`submit` would have waited: no more groups are held than without
        queueing. On an error inside the block nothing is waited for, and a job
        queued in it that has not started yet is cancelled.
        """
        running = self._job
        self._queueing = True
        try:
            yield
        except BaseException:
            if self._job is not running and self._job is not None:
                self._job.cancel()  # the group is not written (if it has not started)
            raise
        finally:
            self._queueing = False
        self._wait_for(running)

    def wait(self) -> None:
        """Wait for the job running, if any (raising its error).

        Before blocking, the run's freed heap is handed back (:func:`release_heap`):
        the writer's memory adds to the run's while it works.

        Interrupted (Ctrl-C), the job is still the one running, for
        :meth:`__exit__` to end.
        """
        self._wait_for(self._job)

    def _wait_for(self, job: Future[Any] | None) -> None:
        """:meth:`wait` for ``job`` (the running one, or an earlier one queued behind)."""
        if job is None:
            return
        if job.cancelled():  # queued when a gate failed: never ran
            if job is self._job:
                self._job = None
            return
        if not job.done():
            release_heap()  # what the run freed goes back while the writer works
        with self._timer("export"):
            try:
                job.result()
            finally:
                if job.done() and job is self._job:
                    self._job = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._process is not None and self._job is not None and not self._job.done():
                self._process.terminate()  # the run failed: its output is not kept
        finally:
            # never leave a write running into a removed folder; after an error, nothing queued
            self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)


def _serve(jobs: BinaryIO, results: BinaryIO) -> None:
    """The writer process's loop: run each job read from ``jobs``, answer on ``results``.

    A job that cannot be read ends the loop (after saying so): the stream is then
    out of step. An answer that does not survive pickling (an exception whose
    class cannot be rebuilt from its arguments) goes back as an
    :class:`~sanqu.errors.OutputError` with its text.
    """
    while True:
        try:
            call = pickle.load(jobs)
        except EOFError:
            return
        except Exception as exc:  # noqa: BLE001 - reported, then the process ends
            _answer(results, ("error", OutputError(f"the writer process could not read a "
                                                   f"job: {type(exc).__name__}: {exc}")))
            return
        try:
            answer: tuple[str, Any] = ("ok", call())
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the run
            answer = ("error", exc)
        del call
        _answer(results, answer)
        del answer
        release_heap()


def _answer(results: BinaryIO, answer: tuple[str, Any]) -> None:
    """Write ``answer`` to the run, as text in an OutputError if it would not unpickle."""
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:  # noqa: BLE001 - not rebuilt on the other side
        err = answer[1]
        data = pickle.dumps(("error", OutputError(f"{type(err).__name__}: {err}")))
    results.write(data)
    results.flush()


def main(argv: list[str]) -> None:
    """The writer process: ``main([JOB_FD, RESULT_FD])``, the two pipes' descriptors."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already so, set first thing in _MAIN
    import sanqu.pipeline  # noqa: F401 - the jobs' modules, loaded before the first job

    with os.fdopen(int(argv[0]), "rb") as jobs, os.fdopen(int(argv[1]), "wb") as results:
        _serve(jobs, results)

