"""The jcs digest (RFC 8785) of an openai-agents-shaped transcript.

A transcript of MOBSTORE_BENCH_TRANSCRIPT (4,000) items shaped like the openai-agents SDK's
session items (user messages, assistant output_text messages, reasoning summaries,
function_call / function_call_output pairs; ~0.2-2 KiB each), digested as
"sha256:" + SHA-256("[" + canonical items joined by "," + "]"):

- mobstore: engine.digest.transcript_digest(items, "jcs") (native when built; DIGEST_IMPL in
  every record);
- rfc8785: the `rfc8785` package's dumps per item + hashlib (the reference implementation a
  Python user would reach for; byte-identical to ours, checked before timing);
- orjson: orjson.dumps(OPT_SORT_KEYS) per item + hashlib: fast, but not RFC 8785 (UTF-8
  key order, its own number text): the speed bar, not a correct digest.

Two inputs: the stored JSON bytes (what a session digest reads; rfc8785 and orjson parse them
first, rfc8785 with json.loads) and Python dicts (what an adapter holds before writing; ours
serialises them with orjson, then canonicalises).
"""

from __future__ import annotations

import functools
import hashlib
import json

import orjson
import pytest
import rfc8785
from conftest import KNOBS, interleaved, seeded, tag

from engine import digest

WORDS = ("the", "agent", "tool", "result", "weather", "Paris", "Zürich", "order", "refund", "shipping", "status",
         "customer", "policy", "summary", "€42.50", "naïve", "😀", "reply", "check", "database", "query", "latency")
TOOLS = ("get_weather", "search_docs", "lookup_order", "issue_refund", "send_email")


def _text(rng, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + rng.choice((".", "?", "!", ".\n"))


def _hex(rng, n: int = 24) -> str:
    return "%0*x" % (n, rng.getrandbits(4 * n))


def openai_agents_items(count: int) -> list[dict]:
    """`count` items as openai-agents stores them (SQLiteSession rows), one turn after another:
    user, [reasoning], [function_call + function_call_output]*, assistant message."""
    rng = seeded("jcs", "openai-agents", count)
    items: list[dict] = []
    while len(items) < count:
        if rng.random() < 0.7:
            items.append({"content": _text(rng, rng.randrange(5, 60)), "role": "user"})
        else:
            items.append({"role": "user", "content": [{"type": "input_text", "text": _text(rng, rng.randrange(5, 60))}]})
        if rng.random() < 0.5:
            items.append({"id": "rs_" + _hex(rng), "summary": [{"text": _text(rng, rng.randrange(10, 80)),
                                                              "type": "summary_text"}], "type": "reasoning"})
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            call = "call_" + _hex(rng, 20)
            args = {"query": _text(rng, rng.randrange(2, 8)), "limit": rng.randrange(1, 50),
                    "threshold": round(rng.random(), 3), "tags": [rng.choice(WORDS) for _ in range(3)]}
            items.append({"arguments": json.dumps(args), "call_id": call, "name": rng.choice(TOOLS),
                          "type": "function_call", "id": "fc_" + _hex(rng), "status": "completed"})
            items.append({"call_id": call, "output": json.dumps({"ok": True, "rows": [
                {"id": rng.randrange(10 ** 6), "score": round(rng.uniform(0, 100), 4), "text": _text(rng, 12)}
                for _ in range(rng.randrange(1, 4))]}), "type": "function_call_output"})
        items.append({"id": "msg_" + _hex(rng), "content": [{"annotations": [], "text": _text(rng, rng.randrange(20, 150)),
                                                           "type": "output_text", "logprobs": []}],
                      "role": "assistant", "status": "completed", "type": "message"})
    return items[:count]


@functools.cache
def transcript() -> tuple[list[dict], list[bytes], str]:
    """(items, their stored bytes, the jcs digest), the digest checked against rfc8785 first."""
    items = openai_agents_items(KNOBS.transcript)
    bodies = [digest.message_bytes(m) for m in items]
    expected = "sha256:" + hashlib.sha256(b"[" + b",".join(rfc8785.dumps(m) for m in items) + b"]").hexdigest()
    assert digest.transcript_digest(bodies, "jcs") == expected
    assert digest.transcript_digest(items, "jcs") == expected
    return items, bodies, expected


def _framed(parts) -> str:
    return "sha256:" + hashlib.sha256(b"[" + b",".join(parts) + b"]").hexdigest()


def _ops(inp: str):
    items, bodies, _ = transcript()
    opt = orjson.OPT_SORT_KEYS
    if inp == "bytes":
        return {
            "mobstore": lambda: digest.transcript_digest(bodies, "jcs"),
            "rfc8785": lambda: _framed([rfc8785.dumps(json.loads(b)) for b in bodies]),
            "orjson": lambda: _framed([orjson.dumps(orjson.loads(b), option=opt) for b in bodies]),
        }
    return {
        "mobstore": lambda: digest.transcript_digest(items, "jcs"),
        "rfc8785": lambda: _framed([rfc8785.dumps(m) for m in items]),
        "orjson": lambda: _framed([orjson.dumps(m, option=opt) for m in items]),
    }


@pytest.mark.parametrize("system", ["mobstore", "rfc8785", "orjson"])
@pytest.mark.parametrize("inp", ["bytes", "dict"])
def test_jcs_transcript_digest(benchmark, inp, system):
    items, bodies, expected = transcript()
    ops = _ops(inp)
    benchmark.group = f"digest.jcs.{inp}"
    tag(benchmark, f"digest.jcs.{inp}.{system}", messages=len(items), input=inp,
        input_bytes=sum(map(len, bodies)), baseline=system != "mobstore")
    # rfc8785 is ~100x slower: measured, never a neighbour of the others
    neighbours = {k: v for k, v in ops.items() if k not in (system, "rfc8785")}
    rounds = KNOBS.n(3, 8) if system == "rfc8785" else KNOBS.n(10, 40)
    result = interleaved(benchmark, ops[system], neighbours, rounds=rounds, warmup=1)
    if system != "orjson":  # orjson's is another digest (not RFC 8785): only its time counts
        assert result == expected
