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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from .errors import OutputError
from .export import release_heap
from .study import Timer

#: Study areas of this many cells or more are written by the writer process.
PROCESS_CELLS = 10_000_000

#: The writer process's program (``-c``: ``-m sanqu.writer`` would load this module twice).
_MAIN = "import sys; from sanqu.writer import main; main(sys.argv[1:])"



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
    prints there can garble a message. It ignores Ctrl-C (the run decides when
    to stop, once the job in hand is done) and exits when its job pipe closes,
    also when this process dies.
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
            When the process is gone.
        """
        with self._lock:
            try:
                pickle.dump(call, self._jobs, protocol=pickle.HIGHEST_PROTOCOL)
                self._jobs.flush()
                call.drop()
                status, value = pickle.load(self._results)
            except (BrokenPipeError, EOFError, pickle.UnpicklingError):
                raise OutputError("the writer process stopped unexpectedly (exit code "
                                  f"{self._proc.wait()}); no output was written") from None
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        """Close the job pipe and wait for the process to exit."""
        for f in (self._jobs, self._results):
            try:
                f.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()


_process: WriterProcess | None = None
_process_lock = threading.Lock()


def writer_process() -> WriterProcess:
    """The session's writer process, started if there is none (or it died)."""
    global _process
    with _process_lock:
        if _process is None or not _process.alive():
            _process = WriterProcess()
            atexit.register(_process.close)
        return _process


def uses_process(cells: int) -> bool:
    """Whether a study area of ``cells`` cells is written by the writer process.

    Only on POSIX systems, where the process's pipes are inherited by number;
    elsewhere every area is written on a thread.
    """
    return cells >= PROCESS_CELLS and os.name == "posix"


class Writer:
    """Writes one group of layers beside the run while the next group is made.

    One job at a time, in order: a job starts once the previous one is done (the
    caller waits for it, counted as ``export``), so at most two groups are held,
    the one being written and the one being traced and gated. A job's error is
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

    def submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``job(*args)`` once the previous job is done; its future."""
        self.wait()
        if self._process is None:
            self._job = self._pool.submit(job, *args)
        else:  # the thread sends the job and waits for it, mostly in system calls
            self._job = self._pool.submit(self._process.run, _Call(job, args))
        return self._job

    def wait(self) -> None:
        """Wait for the job running, if any (raising its error)."""
        if self._job is not None:
            job, self._job = self._job, None
            with self._timer("export"):
                job.result()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)  # never leave a write running into a removed folder


def _serve(jobs: BinaryIO, results: BinaryIO) -> None:
    """The writer process's loop: run each job read from ``jobs``, answer on ``results``."""
    while True:
        try:
            call = pickle.load(jobs)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", call())
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the run
            answer = ("error", exc)
        del call
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            err = answer[1]
            data = pickle.dumps(("error", OutputError(f"{type(err).__name__}: {err}")))
        del answer
        results.write(data)
        results.flush()
        release_heap()


def main(argv: list[str]) -> None:
    """The writer process: ``main([JOB_FD, RESULT_FD])``, the two pipes' descriptors."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import sanqu.pipeline  # noqa: F401 - the jobs' modules, loaded before the first job

    with os.fdopen(int(argv[0]), "rb") as jobs, os.fdopen(int(argv[1]), "wb") as results:
        _serve(jobs, results)

