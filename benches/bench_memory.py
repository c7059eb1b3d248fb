"""Peak memory (RSS) of the calls that touch a whole transcript or a huge batch.

Each row runs in a fresh child process (peak RSS is a process-wide high-water mark) and
records: the child's resident size right before the call, its peak during the call, and the
bytes the call is about. The timed figure is the child's whole run.

- memory.messages: Store.messages() of the cached history session (quick 10,000 messages,
  full 100,000 ~ 103 MB of JSON); peak growth against the JSON bytes (target <= 2x).
  memory.iter_messages: the same transcript through the streaming reader
  Store.iter_messages() (nothing kept): what a consumer that does not hold the list pays.
- memory.append: one apply_runtime_turn of N small dict messages (quick 100,000, full
  1,000,000) to a fresh file; the process's peak RSS, dicts included (target <= 1 GB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import HISTORY_SESSION, KNOBS, history_store, tag

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
READ_HISTORY = 10_000 if KNOBS.quick else 100_000
APPEND_MESSAGES = 100_000 if KNOBS.quick else 1_000_000

_RSS = """
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
def peak():
    # VmHWM, not getrusage: Linux carries ru_maxrss across exec (the parent's peak would show)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
"""

READ_CHILD = _RSS + """
import json, sys, engine
path, sid, mode = sys.argv[1], sys.argv[2], sys.argv[3]
store = engine.open(path, readonly=True)
json_bytes = store.stats()["message_bytes"]
store.messages(sid, 0, 10)  # warm: imports, statement cache
before = rss()
if mode == "list":
    got = store.messages(sid)
    n = len(got)
else:
    n = sum(1 for _ in store.iter_messages(sid))
print(json.dumps({"before": before, "peak": peak(), "json_bytes": json_bytes, "messages": n}))
"""

APPEND_CHILD = _RSS + """
import json, sys, engine
path, n = sys.argv[1], int(sys.argv[2])
msgs = [{"role": "user", "content": f"message {i} of a very long turn", "created_at": "2026-01-01T00:00:00Z"}
        for i in range(n)]
store = engine.open(path)
sid = store.create_session()
before = rss()
r = store.apply_runtime_turn(sid, "r", msgs)
assert r.message_count == n
print(json.dumps({"before": before, "peak": peak(), "json_bytes": store.stats()["message_bytes"], "messages": n}))
"""


def run_child(code: str, *args) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _record(benchmark, key: str, result: dict, **extra) -> None:
    tag(benchmark, key, ops=1, peak_rss=result["peak"], rss_before=result["before"],
        peak_growth=result["peak"] - result["before"], json_bytes=result["json_bytes"],
        messages=result["messages"], **extra)


@pytest.mark.parametrize("mode", ["list", "stream"])
def test_read_memory(benchmark, mode):
    path = history_store(READ_HISTORY)
    benchmark.group = "memory.read"
    out = {}

    def run():
        out.update(run_child(READ_CHILD, path, HISTORY_SESSION, mode))

    benchmark.pedantic(run, rounds=1)
    assert out["messages"] == READ_HISTORY
    _record(benchmark, f"memory.{'messages' if mode == 'list' else 'iter_messages'}", out, history=READ_HISTORY)


def test_append_memory(benchmark, work_dir):
    benchmark.group = "memory.append"
    out = {}

    def run():
        out.update(run_child(APPEND_CHILD, os.path.join(work_dir, f"append-{len(out)}.db"), APPEND_MESSAGES))

    benchmark.pedantic(run, rounds=1)
    _record(benchmark, "memory.append", out)
