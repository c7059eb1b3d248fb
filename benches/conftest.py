"""Benchmark suite plumbing: knobs, seeded data, on-disk fixture cache, bulk store builders.

Every benchmark takes its data from the generators here, so both sides of a ratio see the
same bytes: messages come from engine.demo's meerkat-shaped generators seeded from
MOBSTORE_BENCH_SEED, and a given (kind, size, count) always yields the same messages.

Knobs (environment variables; `benches/README.md` lists them with their defaults):
MOBSTORE_BENCH_QUICK=1 selects the small ladder CI runs (< 2 minutes on 2 cores).
Big stores are built once by bulk inserts straight into the tables (one transaction) and
cached under MOBSTORE_BENCH_CACHE, keyed by their parameters and by a fingerprint of the
code that defines their bytes; every benchmark then works on a copy (writers) or opens
the cached file untouched (readers).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
from typing import Callable, Iterable, Iterator

import orjson
import pytest

import engine
from engine import demo, digest
from engine.receipts import RunBoundaryReceipt
from engine.sessions import BindingFacts, message_key

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # results.py / peers.py sit beside this file
    sys.path.insert(0, HERE)

import results  # noqa: E402

# Bump when the builders below change what they write.
FIXTURE_VERSION = 3
PROFILES = ("planner", "coder", "reviewer", "tester")
TARGET_MOB = "mob-0000"


# ------------------------------------------------------------------------------------------
# knobs


def _env_ints(name: str, default: str) -> tuple[int, ...]:
    raw = os.environ.get(name, default)
    return tuple(int(x.replace("_", "")) for x in raw.split(",") if x.strip())


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)).replace("_", ""))


@dataclasses.dataclass(frozen=True)
class Knobs:
    quick: bool
    seed: int
    cache_dir: str
    work_dir: str | None
    sizes: tuple[int, ...]            # message sizes (bytes of JSON) for the size ladder
    histories: tuple[int, ...]        # session lengths (messages) for the flatness rows
    sessions: tuple[int, ...]         # store sizes (sessions) for the membership rows
    members: int                      # members of the queried mob
    transcript: int                   # messages in the f3 digest / load transcript
    peer_histories: tuple[int, ...]   # history lengths for the peer growth rows
    peer_sessions: int                # sessions in the peer "sessions of mob G" store
    peer_mob_size: int                # sessions per mob in that store
    disk_messages: int                # messages appended turn by turn for the disk rows
    naive_way_limit: int               # 0: the naive way scans every session; else this many, extrapolated
    rounds: float                     # multiplies every round count
    peers: tuple[str, ...]

    @classmethod
    def from_env(cls) -> "Knobs":
        quick = os.environ.get("MOBSTORE_BENCH_QUICK", "") not in ("", "0")
        return cls(
            quick=quick,
            seed=_env_int("MOBSTORE_BENCH_SEED", 20260425),
            cache_dir=os.environ.get("MOBSTORE_BENCH_CACHE")
            or os.path.join(tempfile.gettempdir(), "mobstore-bench-cache"),
            work_dir=os.environ.get("MOBSTORE_BENCH_DIR") or None,
            sizes=_env_ints("MOBSTORE_BENCH_SIZES", "200,1024,16384"),
            histories=_env_ints("MOBSTORE_BENCH_HISTORY", "100,10000" if quick else "100,10000,100000"),
            sessions=_env_ints("MOBSTORE_BENCH_SESSIONS", "10000" if quick else "10000,1000000"),
            members=_env_int("MOBSTORE_BENCH_MEMBERS", 1000),
            transcript=_env_int("MOBSTORE_BENCH_TRANSCRIPT", 4000),
            peer_histories=_env_ints("MOBSTORE_BENCH_PEER_HISTORY", "100,4000"),
            peer_sessions=_env_int("MOBSTORE_BENCH_PEER_SESSIONS", 10000),
            peer_mob_size=_env_int("MOBSTORE_BENCH_PEER_MOB_SIZE", 100),
            disk_messages=_env_int("MOBSTORE_BENCH_DISK_MESSAGES", 400 if quick else 1000),
            naive_way_limit=_env_int("MOBSTORE_BENCH_NAIVE_WAY_LIMIT", 0),
            rounds=float(os.environ.get("MOBSTORE_BENCH_ROUNDS", "1")),
            peers=tuple(p.strip() for p in os.environ.get(
                "MOBSTORE_BENCH_PEERS", "openai-agents,langgraph,naive").split(",") if p.strip()),
        )

    def n(self, quick: int, full: int) -> int:
        """A round count for this mode, scaled by MOBSTORE_BENCH_ROUNDS (at least 1)."""
        return max(1, round((quick if self.quick else full) * self.rounds))

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["mode"] = "quick" if self.quick else "full"
        return out


KNOBS = Knobs.from_env()


# ------------------------------------------------------------------------------------------
# pytest hooks


def pytest_collect_file(file_path, parent):
    """bench_<area>.py files are test modules here (pytest's default only takes test_*.py;
    a file named on the command line is already collected by pytest itself)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def versions() -> dict:
    """What this run measured: every version a reader needs next to the numbers."""
    import platform
    import sqlite3
    from importlib import metadata

    import apsw

    def dist(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "mobstore": engine.__version__,
        "digest_impl": digest.DIGEST_IMPL,
        "native_error": digest.NATIVE_ERROR,
        "python": platform.python_version(),
        "sqlite_apsw": apsw.sqlite_lib_version(),
        "sqlite_stdlib": sqlite3.sqlite_version,
        "apsw": apsw.apsw_version(),
        **{name: dist(name) for name in (
            "cffi", "xxhash", "orjson", "pytest-benchmark", "openai-agents",
            "langgraph-checkpoint-sqlite", "langgraph-checkpoint", "matplotlib")},
    }


def pytest_report_header(config):
    v = versions()
    impl = v["digest_impl"] + (f" ({v['native_error']})" if v["native_error"] else "")
    k = KNOBS
    return [
        f"mobstore {v['mobstore']}; digest {impl}; SQLite {v['sqlite_apsw']} (apsw {v['apsw']}), "
        f"stdlib sqlite3 on SQLite {v['sqlite_stdlib']}",
        f"bench mode {'quick' if k.quick else 'full'}; seed {k.seed}; histories {k.histories}; "
        f"sessions {k.sessions}; cache {k.cache_dir}",
    ]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["mobstore"] = versions()
    machine_info["mobstore_knobs"] = KNOBS.as_dict()
    machine_info["cpu_model"] = results.cpu_model()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["memory_bytes"] = results.memory_bytes()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["mobstore_command"] = ("MOBSTORE_BENCH_QUICK=1 " if KNOBS.quick else "") + "pytest " + " ".join(sys.argv[1:])


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After pytest-benchmark's tables: the targets (docs/performance.md), computed from this run."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    records = results.records_from_dicts(
        [b.as_dict(include_data=False) for b in session.benchmarks if b.stats is not None])
    if not records:
        return
    rows = results.target_rows(records, KNOBS.as_dict(), versions())
    terminalreporter.write_sep("=", "mobstore targets (docs/performance.md) (ratios within this run, medians)")
    for line in results.format_targets_text(rows):
        terminalreporter.write_line(line)
    terminalreporter.write_sep("-", "each group against its baseline (medians)")
    for line in results.format_ratios_text(records):
        terminalreporter.write_line(line)
    peer = results.peer_rows(records)
    if peer:
        terminalreporter.write_sep("-", "peers (same generated turns, WAL + synchronous=FULL)")
        for line in results.format_peers_text(peer):
            terminalreporter.write_line(line)


# ------------------------------------------------------------------------------------------
# seeded data


def seeded(*parts) -> random.Random:
    """A Random for one named stream; the same parts give the same stream in every run."""
    return random.Random(":".join(str(p) for p in (KNOBS.seed, *parts)))


def message_of_size(rng: random.Random, size: int, index: int) -> dict:
    """A ~size-byte meerkat message (compact JSON; the ladder's sizes come out within ~2%),
    alternating a user turn and a block_assistant turn. From 800 bytes up the assistant turn
    carries a tool_use whose args nest objects and floats (engine.demo); below that it is a
    text block (the tool call alone is ~450 bytes). The constants undo the generators'
    envelope and the multi-byte words of their vocabulary."""
    if index % 2 == 0:
        return demo.user_message(rng, max(16, round((size - 75) / 1.07)))
    if size < 800:
        text = demo.user_message(rng, max(16, round((size - 135) / 1.07)))["content"]
        return {"role": "block_assistant", "blocks": [{"block_type": "text", "data": {"text": text}}],
                "stop_reason": "end_turn", "created_at": demo.user_message(rng, 1)["created_at"]}
    return demo.assistant_message(rng, round((size - 431) / 0.817))


def iter_messages(kind: str, size: int) -> Iterator[dict]:
    """The endless message stream `kind` at ~`size` bytes (same seed, same messages)."""
    rng = seeded("messages", kind, size)
    i = 0
    while True:
        yield message_of_size(rng, size, i)
        i += 1


@functools.lru_cache(maxsize=None)
def messages(kind: str, size: int, count: int) -> tuple[dict, ...]:
    """The first `count` messages of stream `kind`. Callers must not mutate them."""
    return tuple(itertools.islice(iter_messages(kind, size), count))


def message_bodies(kind: str, size: int, count: int) -> tuple[bytes, ...]:
    """The same messages as stored JSON bytes (engine.digest.message_bytes, what the store keeps)."""
    return tuple(digest.message_bytes(m) for m in messages(kind, size, count))


def turns(kind: str, size: int, count: int) -> list[list[dict]]:
    """The first `count` turns of stream `kind`: two messages (user, block_assistant) each."""
    flat = messages(kind, size, 2 * count)
    return [list(flat[2 * i:2 * i + 2]) for i in range(count)]


def iter_turns(kind: str, size: int, count: int) -> Iterator[list[dict]]:
    """turns() without keeping them (big fixtures stream through this)."""
    stream = iter_messages(kind, size)
    for _ in range(count):
        yield [next(stream), next(stream)]


def uuid7_text(rng: random.Random, at_ms: int) -> str:
    """A deterministic UUIDv7-shaped id (time-ordered, like the store's own ids)."""
    value = ((at_ms & ((1 << 48) - 1)) << 80) | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed timestamps keep cached files reproducible


# ------------------------------------------------------------------------------------------
# on-disk fixture cache


def _code_fingerprint() -> str:
    """Hash of everything that decides the bytes of a built fixture."""
    h = hashlib.sha256(f"{FIXTURE_VERSION}:{KNOBS.seed}:{engine.__version__}".encode())
    root = os.path.dirname(engine.__file__)
    canon = sorted(os.path.join("_canon_py", n) for n in os.listdir(os.path.join(root, "_canon_py")) if n.endswith(".py"))
    for name in ("schema.sql", "schema.py", "store.py", "demo.py", "meerkat_model.json", *canon, "sessions.py",
                 "receipts.py"):
        with open(os.path.join(root, name), "rb") as f:
            h.update(f.read())
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:12]


def cached_file(name: str, build: Callable[[str], None], *, suffix: str = ".db") -> str:
    """Path of a cached fixture file, building it (into a temporary name, then renamed) on a miss."""
    os.makedirs(KNOBS.cache_dir, exist_ok=True)
    path = os.path.join(KNOBS.cache_dir, f"{name}-{_code_fingerprint()}{suffix}")
    if os.path.exists(path):
        return path
    tmp = f"{path}.tmp-{os.getpid()}"
    for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    started = time.perf_counter()
    build(tmp)
    for side in ("-wal", "-shm"):  # a cleanly closed WAL database has none; refuse to cache a half
        if os.path.exists(tmp + side) and os.path.getsize(tmp + side):
            raise RuntimeError(f"fixture {tmp} was not closed cleanly ({side} left)")
        if os.path.exists(tmp + side):
            os.remove(tmp + side)
    os.replace(tmp, path)
    print(f"\n[bench cache] built {os.path.basename(path)} in {time.perf_counter() - started:.1f} s")
    return path


def copy_db(src: str, dst_dir: str, name: str | None = None) -> str:
    """A writable copy of a cached fixture, flushed to the disk before it is used: otherwise
    the device is still writing back the copy (100 MB for the 100,000-message session) while
    the first timed commits fsync, and their time measures the benchmark's own copy."""
    dst = os.path.join(dst_dir, name or os.path.basename(src))
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())
    os.sync()
    return dst


def file_bytes(path: str) -> int:
    """Bytes on disk of a closed SQLite database: the file plus any WAL left behind."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


# ------------------------------------------------------------------------------------------
# mobstore bulk builders (layout: schema.sql; rows exactly as sessions.py/receipts.py write them,
# checked by bench_store.py::test_bulk_builder_matches_api)


_BINDING_FIELDS = tuple(f.name for f in dataclasses.fields(BindingFacts))
_INSERT_BINDING = (
    f"INSERT INTO ms_bindings (session_id, {', '.join(_BINDING_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(_BINDING_FIELDS) + 1))})"
)
_INSERT_SESSION = (
    "INSERT INTO ms_sessions (num, id, created_at_ms, updated_at_ms, message_count, message_bytes, "
    "metadata_json, digest_profile, sha256_state) VALUES (?, ?, ?, ?, ?, ?, ?, 'f3', ?)"
)
_INSERT_RECEIPT = (
    "INSERT INTO ms_receipts (session_num, run_id, sequence, boundary, conversation_digest, "
    "message_count, profile, runtime_id, contributing_input_ids, committed_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_EVENT = "INSERT INTO ms_events (at_ms, kind, session_id, detail) VALUES (?, ?, ?, ?)"


def _event_detail(detail: dict) -> bytes:
    import orjson

    return orjson.dumps(detail)


def write_history_session(con, num: int, session_id: str, metadata: dict,
                          history: Iterable[list[dict]], at_ms: int, memo: dict | None = None) -> int:
    """Insert one session and its turns as create_session + apply_runtime_turn would have
    written them (turn t: run "run-<t>", input "input-<t>", sequence 0), inside the caller's
    transaction. Returns the message count. `memo` (shared between calls) skips hashing a
    turn again from a digest state already seen: many small sessions with the same turn."""
    state = digest.TranscriptState.new("f3", strict=True)  # create_session's default decode
    con.execute(_INSERT_SESSION, (num, session_id, at_ms, at_ms, 0, 0, digest.dumps_value(metadata),
                                  state.to_bytes()))
    con.execute(_INSERT_BINDING, BindingFacts.from_metadata(metadata).row(session_id))
    con.execute(_INSERT_EVENT, (at_ms, "session_created", session_id, _event_detail({"message_count": 0})))
    count = 0
    total = 0
    for t, turn in enumerate(history):
        key = (state.to_bytes(), id(turn))
        if memo is not None and key in memo:
            bodies, after = memo[key]
            state = digest.TranscriptState.from_bytes(after)
        else:
            bodies = [digest.message_bytes(m) for m in turn]
            state.absorb(bodies)
            if memo is not None:
                memo[key] = (bodies, state.to_bytes())
        con.executemany("INSERT INTO ms_messages (key, body) VALUES (?, ?)",
                        ((message_key(num, count + i), b) for i, b in enumerate(bodies)))
        count += len(bodies)
        total += sum(map(len, bodies))
        run_id = f"run-{t:06d}"
        receipt = RunBoundaryReceipt(run_id, "run_start", (f"input-{t}",), state.digest(), count, 0)
        con.execute(_INSERT_RECEIPT, (num, run_id, 0, "run_start", receipt.conversation_digest, count, "f3",
                                      None, orjson.dumps(list(receipt.contributing_input_ids)), at_ms))
        con.execute(_INSERT_EVENT, (at_ms, "receipt_committed", session_id, _event_detail(
            {"run_id": run_id, "sequence": 0, "message_count": count, "appended": len(bodies)})))
    con.execute("UPDATE ms_sessions SET message_count = ?, message_bytes = ?, sha256_state = ? WHERE num = ?",
                (count, total, state.to_bytes(), num))
    return count


HISTORY_SESSION = "0190f000-0000-7000-8000-000000000001"


def history_metadata() -> dict:
    return demo.mob_metadata("bench-history", "coder", "agent-00001")


def build_history_store(path: str, n_messages: int, size: int) -> None:
    """One session holding n_messages (n/2 turns of ~size-byte messages, stream "history"),
    with a receipt and two events per turn, as n/2 apply_runtime_turn calls would leave it."""
    assert n_messages % 2 == 0, "histories are whole turns"
    with engine.open(path, synchronous="OFF") as store:
        store._connection.execute("PRAGMA cache_size = -262144")
        with store.transaction() as con:
            write_history_session(con, 1, HISTORY_SESSION, history_metadata(),
                                  iter_turns("history", size, n_messages // 2), BASE_MS)


def history_store(n_messages: int, size: int = 1024) -> str:
    return cached_file(f"history-n{n_messages}-s{size}", lambda p: build_history_store(p, n_messages, size))


@dataclasses.dataclass(frozen=True)
class MobLayout:
    """Who is in which mob in a membership store (deterministic from the seed)."""

    session_ids: tuple[str, ...]
    metadata: tuple[dict, ...]
    target_members: frozenset[tuple[str, str, str]]   # (session_id, profile, meerkat_id) of TARGET_MOB
    roster: tuple[tuple[str, str], ...]                # roster for reconcile: members minus 2, plus 2 missing


@functools.lru_cache(maxsize=None)
def mob_layout(n_sessions: int, n_members: int, mob_size: int = 1000) -> MobLayout:
    """n_sessions sessions: TARGET_MOB has n_members valid members and 10 broken claims; the
    other sessions are spread over mobs of mob_size members, ~1% broken claims, ~5% without any
    mob metadata. Creation order is shuffled, so a mob's sessions are spread over the file."""
    rng = seeded("mobs", n_sessions, n_members, mob_size)
    specs: list[tuple[str, str, str, str]] = []  # (mob, profile, meerkat_id, variant)
    for i in range(n_members):
        specs.append((TARGET_MOB, PROFILES[i % 4], f"agent-{i:05d}", "ok"))
    for i, variant in enumerate(["bad_realm"] * 4 + ["bad_label"] * 4 + ["two_parts"] * 2):
        specs.append((TARGET_MOB, PROFILES[i % 4], f"broken-{i:03d}", variant))
    rest = n_sessions - len(specs)
    if rest < 0:
        raise ValueError(f"{n_sessions} sessions cannot hold {n_members} members + 10 broken claims")
    mob_no, slot = 1, 0
    for _ in range(rest):
        r = rng.random()
        if r < 0.05:
            specs.append(("", "", "", "none"))
            continue
        variant = "bad_realm" if r < 0.055 else "bad_label" if r < 0.06 else "ok"
        specs.append((f"mob-{mob_no:04d}", PROFILES[slot % 4], f"agent-{slot:05d}", variant))
        slot += 1
        if slot == mob_size:
            mob_no, slot = mob_no + 1, 0
    rng.shuffle(specs)
    ids, docs, members = [], [], set()
    for i, (mob, profile, meerkat_id, variant) in enumerate(specs):
        sid = uuid7_text(rng, BASE_MS + i)
        if variant == "none":
            md = {"title": f"scratch session {i}"}
        elif variant == "two_parts":
            md = {"session_metadata": {"comms_name": f"{mob}/{profile}", "realm_id": f"mob:{mob}"}}
        else:
            md = demo.mob_metadata(mob, profile, meerkat_id)
            if variant == "bad_realm":
                md["session_metadata"]["realm_id"] = "mob:elsewhere"
            elif variant == "bad_label":
                md["session_metadata"]["peer_meta"]["labels"]["role"] = "observer"
        ids.append(sid)
        docs.append(md)
        if mob == TARGET_MOB and variant == "ok":
            members.add((sid, profile, meerkat_id))
    pairs = sorted((p, m) for _s, p, m in members)
    roster = tuple(pairs[2:] + [("planner", "agent-missing-1"), ("coder", "agent-missing-2")])
    return MobLayout(tuple(ids), tuple(docs), frozenset(members), roster)


def build_mob_store(path: str, n_sessions: int, n_members: int) -> None:
    """The membership store: sessions with metadata and binding rows, no messages (an empty
    transcript's digest state; membership never reads messages) and no event rows."""
    layout = mob_layout(n_sessions, n_members)
    empty_state = digest.TranscriptState.new("f3", strict=True).to_bytes()
    with engine.open(path, synchronous="OFF") as store:
        store._connection.execute("PRAGMA cache_size = -1048576")
        with store.transaction() as con:
            con.executemany(_INSERT_SESSION, (
                (i + 1, sid, BASE_MS + i, BASE_MS + i, 0, 0, digest.dumps_value(md), empty_state)
                for i, (sid, md) in enumerate(zip(layout.session_ids, layout.metadata))))
            con.executemany(_INSERT_BINDING, (
                BindingFacts.from_metadata(md).row(sid) for sid, md in zip(layout.session_ids, layout.metadata)))
        store._connection.execute("PRAGMA optimize")


def mob_store(n_sessions: int, n_members: int) -> str:
    return cached_file(f"mobs-n{n_sessions}-m{n_members}", lambda p: build_mob_store(p, n_sessions, n_members))


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def knobs() -> Knobs:
    return KNOBS


@pytest.fixture(scope="session")
def work_root(tmp_path_factory) -> Iterator[str]:
    """Writable copies of every benchmark, removed when the session ends: deleting files
    between benchmarks would put the file system's work (journal, discard) into the next
    benchmark's fsyncs."""
    if KNOBS.work_dir:
        os.makedirs(KNOBS.work_dir, exist_ok=True)
        path = tempfile.mkdtemp(prefix="run-", dir=KNOBS.work_dir)
    else:
        path = str(tmp_path_factory.mktemp("bench"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def work_dir(work_root, request) -> str:
    """A fresh directory per benchmark (kept until the session ends, see work_root)."""
    return tempfile.mkdtemp(prefix=request.node.name[:40].replace("/", "_") + "-", dir=work_root)


def settle() -> None:
    """Flush what setting up wrote (copied fixtures, bulk loads) before anything is timed. On
    ext4 (data=ordered) the first fsync after a big copy would otherwise also write the copy."""
    os.sync()


class Feed:
    """Hands out prepared items one by one and counts them (a disabled benchmark runs its
    target once, so checks afterwards use `used`, not the round count)."""

    def __init__(self, items):
        self.items = list(items)
        self.used = 0

    def next(self):
        item = self.items[self.used]
        self.used += 1
        return item


def rotating(pool: list, per_round: int, fn: Callable) -> Callable[[], list]:
    """A round = fn over the next `per_round` items of the pool, cycling. Short rounds keep a
    median clear of the scheduler's time slices on a busy machine; every side of a ratio gets
    its own rotation from the start, so each sees the same items in the same order."""
    chunks = [pool[i:i + per_round] for i in range(0, len(pool), per_round)]
    counter = itertools.count()

    def run():
        return [fn(item) for item in chunks[next(counter) % len(chunks)]]

    return run


def interleaved(benchmark, target: Callable, neighbours: dict[str, Callable[[], object]], *,
                rounds: int, warmup: int = 0, before: Callable[[], None] | None = None):
    """benchmark.pedantic(target), each round preceded (untimed) by one call of every
    neighbour, in an order that rotates from round to round, then by `before`.

    The systems or lengths a group compares take turns on the machine round by round, so a
    change in the machine's load while the group runs (other processes, the disk's flush
    state) falls on all of them alike instead of on whichever test happened to run then."""
    names = list(neighbours)
    counter = itertools.count()
    settle()

    def setup():
        k = next(counter) % len(names) if names else 0
        for name in names[k:] + names[:k]:
            neighbours[name]()
        if before is not None:
            before()

    return benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=warmup)


def tag(benchmark, key: str, **extra) -> None:
    """Name a result for results.py (targets, tables, plots) and record how it was measured."""
    benchmark.extra_info["key"] = key
    benchmark.extra_info["digest_impl"] = digest.DIGEST_IMPL
    benchmark.extra_info.update(extra)
