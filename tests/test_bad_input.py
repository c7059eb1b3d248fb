"""The bad-input corpus (docs/messages.md, docs/durability.md): every case is refused with InvalidInputError by every API
it goes to, and the database fingerprint does not change; the CLI answers every bad file or
argument with exit 2 and one line on stderr, no traceback, and leaves every file as it was.

Cases live in tests/corpus/bad/ (layout: tests/corpus/README.md); the few that are too big or
not expressible as a file (50 MB strings, 100,000-deep nesting, Python-only values) are
generated below. Data cases run on the digest path in use here and, in a subprocess, on the
pure-Python path (MOBSTORE_PURE_PYTHON=1): both must refuse with the same error class.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys

import apsw
import pytest

import engine
from engine import digest
from engine.errors import InvalidInputError, MobstoreError

from .conftest import MEERKAT_DIR, fingerprint

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
CORPUS = os.path.join(os.path.dirname(__file__), "corpus", "bad")
REALM = os.path.join(MEERKAT_DIR, "realm-0.7.28-attempted-turn.sqlite3")
KINDS = ("msg", "msgval", "meta", "turn", "session")
BIG = 50 * 1024 * 1024

VALID_MESSAGE = {"role": "user", "content": "fine", "created_at": "2026-03-04T05:06:07Z"}
VALID_METADATA = {"session_metadata": {"comms_name": "m/p/k", "realm_id": "mob:m",
                                       "peer_meta": {"labels": {"mob_id": "m", "role": "p", "meerkat_id": "k"}}}}


# ------------------------------------------------------------------------------------------
# loading cases


def corpus_files() -> list[str]:
    return sorted(n for n in os.listdir(CORPUS) if n.split("-", 1)[0] in KINDS)


def load_file_case(name: str):
    """(kind, value): `msg` cases are the file's exact bytes; the other kinds are JSON read by
    Python's json module, which lets NaN, Infinity, 1e400 (-> inf), lone surrogate escapes and
    integers of any size through, so they reach the API as Python values."""
    kind = name.split("-", 1)[0]
    with open(os.path.join(CORPUS, name), "rb") as fh:
        data = fh.read()
    if kind == "msg":
        return kind, data
    return kind, json.loads(data.decode("utf-8"))


def _nested(depth: int, container: str):
    """`depth` levels of nesting, built iteratively (no recursion limit involved)."""
    value = 1
    for _ in range(depth):
        value = {"a": value} if container == "dict" else [value]
    return value


GENERATED = {
    # 100,000 levels: must fail on the depth limit, not by exhausting a C or Python stack.
    "gen-msg-nesting-100000-arrays": lambda: ("msg", b'{"role":"user","content":"x","deep":' + b"[" * 100_000
                                              + b"]" * 100_000 + b"}"),
    "gen-msg-nesting-100000-objects": lambda: ("msg", b'{"role":"user","content":"x","deep":' + b'{"a":' * 100_000
                                               + b"1" + b"}" * 100_000 + b"}"),
    "gen-msgval-nesting-100000-dicts": lambda: ("msgval", dict(VALID_MESSAGE, deep=_nested(100_000, "dict"))),
    "gen-msgval-nesting-100000-lists": lambda: ("msgval", dict(VALID_MESSAGE, deep=_nested(100_000, "list"))),
    "gen-meta-nesting-100000-dicts": lambda: ("meta", {"deep": _nested(100_000, "dict")}),
    "gen-meta-nesting-100000-lists": lambda: ("meta", {"deep": _nested(100_000, "list")}),
    # 50 MB strings with the fault at the very end: the whole string is scanned, then refused.
    "gen-msg-50mb-string-truncated-utf8": lambda: ("msg", b'{"role":"user","content":"' + b"a" * BIG + b'\xe2\x82"}'),
    "gen-msg-50mb-string-lone-surrogate-escape": lambda: ("msg", b'{"role":"user","content":"' + b"a" * BIG
                                                          + b'\\ud800"}'),
    "gen-msg-50mb-string-unknown-role": lambda: ("msg", b'{"content":"' + b"a" * BIG + b'","role":"wizard"}'),
    "gen-msgval-50mb-string-lone-surrogate": lambda: ("msgval", dict(VALID_MESSAGE, content="a" * BIG + "\ud800")),
    "gen-meta-50mb-label-lone-surrogate": lambda: ("meta", {"session_metadata": {"peer_meta": {
        "labels": {"mob_id": "m" * BIG + "\udfff"}}}}),
    "gen-session-id-50mb": lambda: ("session", {"session_id": "s" * BIG}),
    "gen-turn-run-id-50mb": lambda: ("turn", {"run_id": "r" * BIG}),
    # Python values no JSON file can carry.
    "gen-msgval-int-key": lambda: ("msgval", {**VALID_MESSAGE, 1: "x"}),
    "gen-msgval-bytes-value": lambda: ("msgval", dict(VALID_MESSAGE, content=b"bytes")),
    "gen-msgval-tuple-key": lambda: ("msgval", {**VALID_MESSAGE, ("a",): 1}),
    "gen-meta-int-and-str-key-collide": lambda: ("meta", {"1": "a", 1: "b"}),
    "gen-meta-bool-key": lambda: ("meta", {True: "a"}),
    "gen-meta-python-int-above-2-64": lambda: ("meta", {"n": 2 ** 64 + 5}),
    "gen-meta-python-int-2-100-in-list": lambda: ("meta", {"n": [1, 2, 2 ** 100]}),
    "gen-meta-python-int-below-i64": lambda: ("meta", {"n": -(2 ** 63) - 1}),
    "gen-meta-nan-float": lambda: ("meta", {"x": float("nan")}),
    "gen-meta-bytes-value": lambda: ("meta", {"x": b"raw"}),
    "gen-meta-set-value": lambda: ("meta", {"x": {"a", "b"}}),
    "gen-meta-object-value": lambda: ("meta", {"x": object()}),
    "gen-turn-input-ids-bytes-items": lambda: ("turn", {"contributing_input_ids": [b"in-1"]}),
    "gen-turn-input-ids-bytes": lambda: ("turn", {"contributing_input_ids": b"in-1"}),
    "gen-turn-run-id-bytes": lambda: ("turn", {"run_id": b"run"}),
    "gen-session-id-bytes": lambda: ("session", {"session_id": b"sess"}),
}


def all_case_ids() -> list[str]:
    return corpus_files() + sorted(GENERATED)


def load_case(case_id: str):
    if case_id in GENERATED:
        return GENERATED[case_id]()
    return load_file_case(case_id)


# ------------------------------------------------------------------------------------------
# running a data case


def seed_store(store) -> str:
    """A session with messages, metadata, a receipt and events: the fingerprint has content."""
    sid = store.create_session(VALID_METADATA, session_id="base", messages=[VALID_MESSAGE])
    store.apply_runtime_turn(sid, "run-0", [VALID_MESSAGE], contributing_input_ids=["in-0"])
    return sid


def _calls(kind: str, value, sid: str) -> list[tuple[str, callable]]:
    """(api name, thunk) for every API a case of `kind` goes to."""
    def store_calls(store):
        out = []
        if kind in ("msg", "msgval"):
            out += [
                ("append_messages", lambda: store.append_messages(sid, [VALID_MESSAGE, value])),
                ("apply_runtime_turn", lambda: store.apply_runtime_turn(sid, "run-x", [VALID_MESSAGE, value])),
                ("create_session", lambda: store.create_session(messages=[value])),
                ("create_session+id", lambda: store.create_session(session_id="new", messages=[VALID_MESSAGE, value])),
            ]
        elif kind == "meta":
            out += [
                ("create_session", lambda: store.create_session(value)),
                ("set_metadata", lambda: store.set_metadata(sid, value)),
            ]
        elif kind == "turn":
            kw = {"session_id": sid, "run_id": "run-x", "messages": [VALID_MESSAGE], "boundary": "run_start",
                  "contributing_input_ids": ["in-1"]}
            kw.update(value)
            out.append(("apply_runtime_turn", lambda: store.apply_runtime_turn(
                kw["session_id"], kw["run_id"], kw["messages"], boundary=kw["boundary"],
                contributing_input_ids=kw["contributing_input_ids"])))
        elif kind == "session":
            out.append(("create_session", lambda: store.create_session(VALID_METADATA, **value)))
            if "session_id" in value:  # a bad id is refused by every API that takes one
                bad = value["session_id"]
                out += [
                    ("append_messages", lambda: store.append_messages(bad, [VALID_MESSAGE])),
                    ("apply_runtime_turn", lambda: store.apply_runtime_turn(bad, "run-x", [VALID_MESSAGE])),
                    ("messages", lambda: store.messages(bad)),
                    ("session", lambda: store.session(bad)),
                    ("set_metadata", lambda: store.set_metadata(bad, {})),
                    ("delete_session", lambda: store.delete_session(bad)),
                    ("receipts", lambda: store.receipts(bad)),
                    ("transcript_digest", lambda: store.transcript_digest(bad)),
                    ("verify", lambda: store.verify(bad)),
                    ("events", lambda: store.events(session_id=bad)),
                ]
        return out

    def digest_calls():
        if kind not in ("msg", "msgval"):
            return []
        # jcs takes any JSON object: it must refuse exactly the cases that are not I-JSON objects
        out = [(f"canonical_message[{p}]", lambda p=p: digest.canonical_message(value, p)) for p in digest.PROFILES
               if p != "jcs" or jcs_refuses(value)]
        out.append(("transcript_digest", lambda: digest.transcript_digest([VALID_MESSAGE, value])))
        return out

    return store_calls, digest_calls


def jcs_refuses(value) -> bool:
    """Whether the jcs profile must refuse a case, by an independent reading: the stdlib
    parser (no duplicate names, no NaN/Infinity, numbers as doubles) and the rfc8785 package
    (lone surrogates, infinities) must take it as an object nested at most 127 deep."""
    import rfc8785  # noqa: PLC0415 - test dependency

    def pairs(items):
        if len({k for k, _ in items}) != len(items):
            raise ValueError("duplicate name")
        return dict(items)

    def constant(name):
        raise ValueError(name)

    try:
        doc = json.loads(digest.message_bytes(value).decode("utf-8"), object_pairs_hook=pairs,
                         parse_constant=constant, parse_int=float)
        rfc8785.dumps(doc)
    except (ValueError, RecursionError, InvalidInputError, rfc8785.CanonicalizationError):
        return True
    depth, level = 0, [(doc, 1)]
    while level:
        v, d = level.pop()
        depth = max(depth, d)
        level += [(x, d + 1) for x in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())]
    return not isinstance(doc, dict) or depth > 127


def run_case(case_id: str, db_path: str) -> dict[str, str]:
    """Run one case against a fresh store at db_path; return {api: error class name, or
    "accepted"/"database changed"}. Used in-process and by the pure-Python subprocess."""
    kind, value = load_case(case_id)
    outcome: dict[str, str] = {}
    with engine.open(db_path, synchronous="OFF") as store:  # durability is not under test here
        sid = seed_store(store)
        store_calls, digest_calls = _calls(kind, value, sid)
        for api, call in store_calls(store) + digest_calls():
            before = fingerprint(db_path)
            try:
                call()
                outcome[api] = "accepted"
            except MobstoreError as exc:
                outcome[api] = type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - the point is to name what leaked
                outcome[api] = f"LEAKED {type(exc).__module__}.{type(exc).__name__}: {str(exc)[:120]}"
            if fingerprint(db_path) != before:
                outcome[api] += " + database changed"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    return outcome


def _is_invalid_input(name: str) -> bool:
    cls = getattr(engine.errors, name, None)
    return isinstance(cls, type) and issubclass(cls, InvalidInputError)


# ------------------------------------------------------------------------------------------
# tests: data cases

_OUTCOMES_HERE: dict[str, dict[str, str]] = {}  # filled by the parametrized test, reused below


def test_corpus_is_big_enough_and_well_formed():
    files = os.listdir(CORPUS)
    unknown = [n for n in files if n.split("-", 1)[0] not in KINDS and n != "cli-cases.jsonl"]
    assert not unknown, f"files with no known kind prefix: {unknown}"
    ids = all_case_ids()
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
    kinds = {i.removeprefix("gen-").split("-", 1)[0] for i in ids}
    assert kinds == set(KINDS)
    for name in corpus_files():
        load_file_case(name)  # every non-raw case is readable JSON


def test_jcs_is_held_to_the_json_level_cases():
    """The cases that are bad JSON (not only bad meerkat messages) go to the jcs profile too."""
    refused = [c for c in all_case_ids() if load_case(c)[0] in ("msg", "msgval") and jcs_refuses(load_case(c)[1])]
    assert len(refused) >= 30, refused


@pytest.mark.parametrize("case_id", all_case_ids())
def test_data_case_is_refused_and_nothing_changes(case_id, db_path):
    outcome = _OUTCOMES_HERE[case_id] = run_case(case_id, db_path)
    wrong = {api: got for api, got in outcome.items() if not _is_invalid_input(got)}
    assert not wrong, f"{case_id}: expected InvalidInputError from every API, got {wrong}"


def test_pure_python_path_refuses_the_same_way(tmp_path):
    """All data cases again in a subprocess on the pure-Python digest path; the same error class
    per (case, API) as here. On a pure-Python build both runs are the reference."""
    script = (
        "import json, sys\n"
        "from engine import digest\n"
        "from tests import test_bad_input as t\n"
        "assert digest.DIGEST_IMPL == 'python', digest.DIGEST_IMPL\n"
        "out = {c: t.run_case(c, sys.argv[1]) for c in t.all_case_ids()}\n"
        "sys.stdout.write(json.dumps(out))\n"
    )
    env = dict(os.environ, MOBSTORE_PURE_PYTHON="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "py.db")], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    python_path = json.loads(proc.stdout)
    here = {c: _OUTCOMES_HERE.get(c) or run_case(c, str(tmp_path / "here.db")) for c in all_case_ids()}
    differ = {c: (here[c], python_path[c]) for c in here if here[c] != python_path[c]}
    assert not differ, f"{digest.DIGEST_IMPL} vs python outcomes differ: {differ}"
    wrong = {c: o for c, o in python_path.items() if not all(_is_invalid_input(v) for v in o.values())}
    assert not wrong, f"pure-Python path: {wrong}"


# Controls: the corpus cases fail for their fault, not because the surrounding call is broken.


def test_controls_valid_versions_are_accepted(store, db_path):
    sid = seed_store(store)
    assert store.append_messages(sid, [VALID_MESSAGE]) == 3
    r = store.apply_runtime_turn(sid, "run-x", [VALID_MESSAGE], boundary="run_start", contributing_input_ids=["in-1"])
    assert (r.sequence, r.message_count) == (0, 4)
    store.set_metadata(sid, VALID_METADATA)
    assert store.create_session(VALID_METADATA, session_id="new", messages=[VALID_MESSAGE]) == "new"
    big = {"role": "user", "content": "é" * 100_000, "created_at": "2026-03-04T05:06:07Z"}  # size alone is fine
    assert store.append_messages(sid, [big]) == 5
    assert store.verify().ok


def _message_at_depth(levels: int) -> bytes:
    """A tool_use message whose deepest container is at `levels` (top-level object = 1)."""
    inner = b"[" * (levels - 4) + b"]" * (levels - 4)
    return (b'{"role":"block_assistant","blocks":[{"block_type":"tool_use","data":{"id":"t","name":"n","args":'
            + inner + b'}}],"stop_reason":"tool_use","created_at":"2026-03-04T05:06:07Z"}')


def test_controls_nesting_limit_is_127_levels(store):
    """FORMAT/_canon_py rule 1: at most 127 levels nest; corpus cases at 128/129 are just over."""
    sid = store.create_session()
    assert store.append_messages(sid, [_message_at_depth(127)]) == 1
    with pytest.raises(InvalidInputError):
        store.append_messages(sid, [_message_at_depth(128)])
    store.set_metadata(sid, {"deep": _nested(125, "list")})  # 1 (document) + 125 lists + 1 scalar level
    with pytest.raises(InvalidInputError):
        store.set_metadata(sid, {"deep": _nested(129, "list")})


def test_sql_metacharacters_in_ids_are_plain_data(store, db_path):
    """Quotes, semicolons, comment markers and LIKE/GLOB wildcards are ordinary characters of an
    id (bound, never formatted into SQL): stored and found byte-exactly, matching nothing else."""
    hostile = ["x'); DROP TABLE ms_sessions; --", 'a"b', "%", "_", "*", "[a-z]", "' OR '1'='1", "\\", "a;b"]
    for i, sid in enumerate(hostile):
        store.create_session(VALID_METADATA, session_id=sid)
        r = store.apply_runtime_turn(sid, hostile[-1 - i], [VALID_MESSAGE], contributing_input_ids=[hostile[i]])
        assert r.run_id == hostile[-1 - i] and r.contributing_input_ids == (hostile[i],)
    for sid in hostile:
        assert store.session(sid).id == sid and len(store.receipts(sid)) == 1
    assert store.session("x'%") is None and store.session("' OR 1=1 --") is None
    assert store.mob_members("%") == [] and store.mob_members("' OR '1'='1") == []
    assert len(store.mob_members("m")) == len(hostile)
    con = store._connection
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"ms_sessions", "ms_messages", "ms_receipts", "ms_bindings", "ms_events"} <= tables
    assert store.delete_session("a%") is False and store.delete_session("?") is False
    assert store.session_count() == len(hostile)
    assert store.verify().ok


# ------------------------------------------------------------------------------------------
# tests: CLI


def _cli_cases() -> list[tuple[str, dict, str | None]]:
    out = []
    with open(os.path.join(CORPUS, "cli-cases.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                case = json.loads(line)
                for bad in case.get("bad", [None]):
                    out.append((case["case"] + (f"[{bad}]" if bad else ""), case, bad))
    return out


CLI_CASES = _cli_cases()


def _mobstore_db(path: str, rng: random.Random) -> str:
    """A real store with mob members, receipts and enough messages for several pages (closing
    the last connection checkpoints the WAL into the main file, so truncating it cuts content)."""
    from engine.demo import mob_metadata, turn_messages

    with engine.open(path, synchronous="OFF") as store:  # durability is not under test here
        for k in range(6):
            sid = store.create_session(mob_metadata("m", "p", f"k{k}"))
            for t in range(4):
                store.apply_runtime_turn(sid, f"run-{t}", turn_messages(rng))
    return path


def _make_bad(recipe: str, where: str, rng: random.Random) -> str:
    """Create the bad file (or the absence of one) named by `recipe`; return its path."""
    path = os.path.join(where, f"bad-{recipe}.db")
    if recipe in ("missing", "missing-parent-dir"):
        return path if recipe == "missing" else os.path.join(where, "no-such-dir", "x.db")
    if recipe == "directory":
        os.mkdir(path)
        return path
    if recipe.startswith(("db-truncated", "realm-truncated")) or recipe == "mobstore-as-realm":
        if recipe.startswith("realm"):
            with open(REALM, "rb") as fh:
                whole = fh.read()
        else:
            tmp = _mobstore_db(os.path.join(where, "whole.db"), rng)
            with open(tmp, "rb") as fh:
                whole = fh.read()
            os.remove(tmp)
        cut = {"header": 50, "one-page": 4096 + 100, "half": len(whole) // 2}
        data = next((whole[:n] for suffix, n in cut.items() if recipe.endswith("truncated-" + suffix)), whole)
    elif recipe == "db-empty":
        data = b""
    elif recipe == "text":
        data = b"this is not a database\n" * 40
    elif recipe == "random":
        data = bytes(rng.randrange(256) for _ in range(8192))
    elif recipe == "zeros":
        data = b"\x00" * 8192
    elif recipe == "foreign-sqlite":
        con = apsw.Connection(path)
        con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'mine')")
        con.close()
        return path
    elif recipe == "too-new":
        _mobstore_db(path, rng)
        con = apsw.Connection(path)
        con.execute("PRAGMA user_version = 99")
        con.close()
        return path
    else:
        raise AssertionError(f"unknown recipe {recipe}")
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def _tree(where: str, skip: str) -> dict[str, str]:
    """Every file under `where` with the SHA-256 of its bytes (directories as 'dir'), except the
    good store `skip` and its -wal/-shm: opening it may switch journal files, its rows are
    compared with fingerprint()."""
    out = {}
    for base, dirs, files in os.walk(where):
        for d in dirs:
            out[os.path.relpath(os.path.join(base, d), where)] = "dir"
        for f in files:
            p = os.path.join(base, f)
            if p in (skip, skip + "-wal", skip + "-shm"):
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, where)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.parametrize("case_id,case,bad", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_exit_2_one_line_nothing_changes(case_id, case, bad, tmp_path, rng):
    work = tmp_path / "w"
    work.mkdir()
    db = _mobstore_db(str(work / "good.db"), rng)
    values = {"db": db, "realm": REALM, "new": str(work / "new.db"), "missing": str(work / "missing.txt"),
              "dir": str(work)}
    if bad:
        values["bad"] = _make_bad(bad, str(work), rng)
    if "roster" in case:
        values["roster"] = str(work / "roster.txt")
        text = case["roster"]
        data = bytes.fromhex(text) if all(c in "0123456789abcdef " for c in text) else text.encode()
        with open(values["roster"], "wb") as fh:
            fh.write(data)
    argv: list = []
    for arg in case["argv"]:
        if isinstance(arg, dict):
            argv.append(bytes.fromhex(arg["hex"]))
        else:
            argv.append(arg.format(**values))
    good_before = fingerprint(db)
    tree_before = _tree(str(work), skip=db)
    proc = subprocess.run([sys.executable, "-m", "engine", *argv], capture_output=True, cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, f"{case_id}: exit {proc.returncode}\nstdout: {proc.stdout[:400]!r}\nstderr: {stderr}"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mobstore: error: "), f"{case_id}: stderr {stderr!r}"
    assert "Traceback" not in stderr
    assert proc.stdout == b"", f"{case_id}: printed on stdout {proc.stdout[:200]!r}"
    assert fingerprint(db) == good_before
    tree_after = _tree(str(work), skip=db)
    changed = sorted(k for k in set(tree_before) | set(tree_after) if tree_before.get(k) != tree_after.get(k))
    assert not changed, f"{case_id}: files created or changed: {changed}"
