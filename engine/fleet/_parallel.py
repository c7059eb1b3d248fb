"""One function over many store files in worker processes (verify, export).

Processes rather than threads: most of the work around the C digest and Parquet encoding
is Python (reading rows, building batches) and holds the GIL. Each worker is a fresh
`python -m engine.fleet._parallel` (never a fork: the caller may hold DuckDB or other
threads a forked child would inherit half-way; and not multiprocessing's spawn, which
re-imports the caller's __main__ in every child and fails when there is none, e.g. stdin).
Items are handed out one at a time, so a big store does not keep small ones waiting.

Protocol over the worker's stdin/stdout: length-prefixed pickles; the parent sends
(function name, args), the worker answers ("ok", result) or ("error", traceback). Only functions named in
ALLOWED run; they report failures in their result instead of raising.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import traceback
from typing import Callable, Sequence

ALLOWED = {
    "engine.fleet.verify:verify_one",
    "engine.fleet.parquet:write_store",
}
_HEADER = struct.Struct(">Q")


def workers_for(count: int, workers: int | None) -> int:
    """How many processes for `count` items: `workers`, else one per core, never more than
    there are items, at least one."""
    return max(1, min(count, workers or os.cpu_count() or 1))


def _resolve(name: str) -> Callable:
    if name not in ALLOWED:
        raise ValueError(f"not a fleet worker function: {name!r}")
    module, attr = name.split(":")
    return getattr(importlib.import_module(module), attr)


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("worker stream closed")
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("worker stream closed mid-message")
    return pickle.loads(data)


def _start_worker() -> subprocess.Popen:
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "engine.fleet._parallel"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)


def run(name: str, items: Sequence[tuple], workers: int,
        progress: Callable[[int, int], None] | None = None) -> list:
    """[fn(*item) for item in items] where fn is the ALLOWED function `name`
    ("module:function"), in `workers` processes (1: in this process), results in the
    items' order. `progress(done, total)` after each item, from the calling thread."""
    fn = _resolve(name)
    total = len(items)
    if progress is not None:
        progress(0, total)
    if workers <= 1 or total <= 1:
        out = []
        for done, item in enumerate(items, 1):
            out.append(fn(*item))
            if progress is not None:
                progress(done, total)
        return out
    results: list = [None] * total
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(total):
        todo.put(i)
    events: queue.SimpleQueue = queue.SimpleQueue()  # (index, None) per finished item, or (None, error)

    def drive(proc: subprocess.Popen) -> None:
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                _send(proc.stdin, (name, items[i]))
                status, value = _receive(proc.stdout)
                if status != "ok":
                    raise RuntimeError(f"{name}{items[i]!r} raised in the worker:\n{value}")
                results[i] = value
                events.put((i, None))
        except BaseException as exc:  # a dead worker: the whole run fails, loudly
            events.put((None, exc))

    procs = [_start_worker() for _ in range(min(workers, total))]
    threads = [threading.Thread(target=drive, args=(p,), daemon=True) for p in procs]
    try:
        for t in threads:
            t.start()
        for done in range(1, total + 1):
            _i, error = events.get()
            if error is not None:
                raise RuntimeError(f"a fleet worker process failed: {error}") from error
            if progress is not None:
                progress(done, total)
        return results
    finally:
        while True:  # nothing more for the workers, then let them see end of input
            try:
                todo.get_nowait()
            except queue.Empty:
                break
        for p in procs:
            with contextlib.suppress(OSError):
                p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in threads:
            t.join(timeout=1)


def _serve() -> None:
    """The worker loop: read (name, args), answer fn(*args), until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed by accident must not corrupt the protocol
    while True:
        try:
            name, args = _receive(stdin)
        except EOFError:
            return
        try:
            answer = ("ok", _resolve(name)(*args))
        except Exception:  # a bug, not a bad file (those are results): the parent raises it
            answer = ("error", traceback.format_exc())
        _send(stdout, answer)


if __name__ == "__main__":
    _serve()
