"""cffi builder for engine._canon_native (never imports `engine`).

Used by setup.py (``cffi_modules=["_native/build_canon.py:ffibuilder"]``) and
runnable directly to build in place::

    python _native/build_canon.py          # writes engine/_canon_native*.so

meerkat's typed message model is data, ``engine/meerkat_model.json`` (read here
as a file, the same one the Python reference loads). Every build generates the
C tables message.c interprets from it, ``build/native-gen/meerkat_model.h``
(``generate_model_header``; ``python _native/build_canon.py --header`` prints
it), with the file's SHA-256 compiled in: engine.digest refuses a module built
from another model.

Environment:
    MOBSTORE_NATIVE_DEBUG=1   -O0 -g instead of -O3
    MOBSTORE_SANITIZE=1       -fsanitize=address,undefined (run the tests with
                              LD_PRELOAD=$(gcc -print-file-name=libasan.so))
    MOBSTORE_SANITIZE=thread  -fsanitize=thread: the hashing thread and its hand-offs
                              (LD_PRELOAD=$(gcc -print-file-name=libtsan.so))
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOURCES = ["json_parse.c", "numbers.c", "scalars.c", "message.c", "transcript.c", "hashpipe.c", "writer.c", "sha256.c", "jcs.c",
           "jcs_number.c"]
MODEL = os.path.join(ROOT, "engine", "meerkat_model.json")
GEN_DIR = os.path.join(ROOT, "build", "native-gen")

# ---------------------------------------------------------------------------
# The model tables (canon.h documents the structs; message.c interprets them)

_SCALARS = {"string": "S_STRING", "bool": "S_BOOL", "u32": "S_U32", "u64": "S_U64", "u64_nonzero": "S_U64_NONZERO",
            "uuid": "S_UUID", "timestamp": "S_TIMESTAMP", "value": "S_VALUE", "raw": "S_RAW",
            "nonblank_string": "S_NONBLANK", "prompt_text": "S_PROMPT_TEXT", "skill_name": "S_SKILL_NAME"}
_KINDS = {"struct": "T_STRUCT", "enum": "T_ENUM", "tagged": "T_TAGGED", "adjacent": "T_ADJACENT",
          "content_codec": "T_CODEC", "value_first": "T_VALUE_FIRST", "legacy_name_or": "T_LEGACY"}
_MISSING = {"error": "M_ERROR", "none": "M_NONE", "default": "M_DEFAULT", "now": "M_NOW"}
_SKIP = {"never": "K_NEVER", "none": "K_NONE", "empty": "K_EMPTY", "default": "K_DEFAULT",
         "empty_object": "K_EMPTY_OBJECT"}
_CONTEXT = {None: "X_INHERIT", "json": "X_JSON"}


def _c_str(s):
    """A C string literal of UTF-8 text (octal escapes for everything but plain ASCII)."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in "\\\"" or b < 0x20 or b >= 0x7F or c == "?":
            out.append("\\%03o" % b)
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _matcher(fname, names):
    """A function mapping a key (bytes, length) to its index in `names`, or -1: a switch on the
    length, then constant-length compares the compiler turns into word loads."""
    by_len = {}
    for i, n in enumerate(names):
        by_len.setdefault(len(n.encode("utf-8")), []).append((i, n))
    lines = ["static int %s(const uint8_t *k, uint32_t n)" % fname, "{", "    (void)k;", "    switch (n) {"]
    for n_, items in sorted(by_len.items()):
        lines.append("    case %d:" % n_)
        for i, n in items:
            lines.append("        if (memcmp(k, %s, %d) == 0) return %d;" % (_c_str(n), n_, i))
        lines.append("        break;")
    lines += ["    }", "    return -1;", "}", ""]
    return lines


def generate_model_header(model_path=MODEL):
    """C source of the tables for the model file at model_path (a string)."""
    with open(model_path, "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    types = doc["types"]
    names = list(types)
    index = {n: i for i, n in enumerate(names)}

    def ref(t):
        return ("S_TYPE", index[t]) if t in index else (_SCALARS[t], -1)

    fields, variants, out_types, fns = [], [], [], []
    for ti, name in enumerate(names):
        t = types[name]
        kind = t["kind"]
        row = {"kind": _KINDS[kind], "what": t.get("what", "variant"), "first": 0, "count": 0, "match": "NULL",
               "tag": None, "content": None, "inner": -1, "deflt": -1, "deny": int(bool(t.get("deny_unknown_fields"))),
               "context": _CONTEXT[t.get("context")], "flat": -1, "expected": "", "aux": "NULL", "naux": 0,
               "text_variant": -1, "text_field": None, "other_variant": None, "other_field": None}
        if kind == "struct":
            row["first"], row["count"] = len(fields), len(t["fields"])
            keys = []
            for fi, f in enumerate(t["fields"]):
                sc, tix = ref(f["type"])
                option = bool(f.get("option"))
                fields.append({
                    "name": f["name"], "scalar": sc, "type": tix, "list": int(bool(f.get("list"))),
                    "option": int(option), "present_null": int(bool(f.get("present_null"))),
                    "flatten": int(bool(f.get("flatten"))),
                    "missing": _MISSING[f.get("missing", "none" if option else "error")],
                    "skip": _SKIP[f.get("skip", "never")],
                    "digest": {None: "D_NONE", "epoch": "D_EPOCH", "clear": "D_CLEAR"}[f.get("digest")]})
                if f.get("flatten"):
                    row["flat"] = fi
                    keys.append(None)
                else:
                    keys.append(f["name"])
            match_names, match_index = [], []
            for fi, (f, k) in enumerate(zip(t["fields"], keys)):
                for key in ([k] if k else []) + list(f.get("alias", [])):
                    match_names.append(key)
                    match_index.append(fi)
            fn = "mk_%d" % ti
            lines = _matcher(fn + "_raw", match_names)
            lines += ["static int %s(const uint8_t *k, uint32_t n)" % fn, "{",
                      "    static const int8_t map[] = {%s};" % (", ".join(map(str, match_index)) or "0"),
                      "    int i = %s_raw(k, n);" % fn, "    return i < 0 ? -1 : map[i];", "}", ""]
            fns += lines
            row["match"] = fn
            row["expected"] = ", ".join(f["name"] for f in t["fields"])
        elif kind in ("enum", "tagged", "adjacent"):
            vs = [{"name": v} for v in t["values"]] if kind == "enum" else t["variants"]
            row["first"], row["count"] = len(variants), len(vs)
            for v in vs:
                variants.append({"name": v["name"], "type": index[v["type"]] if v.get("type") else -1,
                                 "reject": v.get("reject"), "collapse": int(v.get("digest") == "collapse_inline_image")})
            fn = "mv_%d" % ti
            fns += _matcher(fn, [v["name"] for v in vs])
            row["match"] = fn
            row["expected"] = ", ".join(v["name"] for v in vs if not v.get("reject"))
            if kind == "enum" and t.get("default") is not None:
                row["deflt"] = t["values"].index(t["default"])
            if kind != "enum":
                row["tag"] = t["tag"]
                row["content"] = t.get("content")
        elif kind == "content_codec":
            item = types[t["item"]]
            row["inner"] = index[t["item"]]
            row["text_variant"] = [v["name"] for v in item["variants"]].index(t["text_variant"])
            row["text_field"] = t["text_field"]
        elif kind == "value_first":
            row["inner"] = index[t["type"]]
            fb = t["fallback"]
            row["other_variant"], row["other_field"] = fb["variant"], fb["payload"]
            row["aux"], row["naux"] = "AUX_%d" % ti, len(fb["summary_from"])
            fns.append("static const char *const AUX_%d[] = {%s};" % (ti, ", ".join(_c_str(k) for k in fb["summary_from"])))
        elif kind == "legacy_name_or":
            row["inner"] = index[t["type"]]
            row["other_variant"], row["other_field"] = t["other"]["variant"], t["other"]["field"]
            pairs = [x for kv in t["names"].items() for x in kv]
            row["aux"], row["naux"] = "AUX_%d" % ti, len(t["names"])
            fns.append("static const char *const AUX_%d[] = {%s};" % (ti, ", ".join(_c_str(k) for k in pairs)))
        out_types.append(row)

    def s_or_null(x):
        return _c_str(x) if x is not None else "NULL"

    def slen(x):
        return len(x.encode("utf-8")) if x is not None else 0

    out = ["/* Generated by _native/build_canon.py from engine/meerkat_model.json -- do not edit. */",
           "/* meerkat %s (%s) */" % (doc["meerkat"]["release"], doc["meerkat"]["commit"]),
           "#define MOB_MODEL_SHA256 %s" % _c_str(hashlib.sha256(raw).hexdigest()),
           "#define MOB_MODEL_ROOT %d" % index[doc["root"]],
           "#define MOB_MODEL_REPLAY_TYPE %d" % index[doc["replay_0810"]["type"]],
           "#define MOB_MODEL_REPLAY_VARIANT %s" % _c_str(doc["replay_0810"]["variant"]),
           "#define MOB_MODEL_NTYPES %d" % len(names), ""]
    out += fns
    out.append("static const mfield MF[] = {")
    for f in fields:
        out.append("    {%s, %d, %s, %d, %d, %d, %d, %d, %s, %s, %s}," % (
            _c_str(f["name"]), slen(f["name"]), f["scalar"], f["type"], f["list"], f["option"], f["present_null"],
            f["flatten"], f["missing"], f["skip"], f["digest"]))
    out.append("    {NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}")
    out.append("};")
    out.append("static const mvariant MV[] = {")
    for v in variants:
        out.append("    {%s, %d, %d, %s, %d}," % (_c_str(v["name"]), slen(v["name"]), v["type"],
                                                s_or_null(v["reject"]), v["collapse"]))
    out.append("    {NULL, 0, 0, NULL, 0}")
    out.append("};")
    out.append("static const mtype MT[] = {")
    for name, r in zip(names, out_types):
        out.append("    /* %d %s */ {%s, %d, %s, %d, %d, %d, %s, %s, %s, %d, %s, %d, %d, %d, %s, %s, %d, %d, %s, %d, %s, %d, %s, %d},"
                   % (names.index(name), name, r["kind"], r["deny"], r["context"], r["flat"], r["first"], r["count"],
                      r["match"], _c_str(r["what"]), s_or_null(r["tag"]), slen(r["tag"]), s_or_null(r["content"]),
                      slen(r["content"]), r["inner"], r["deflt"], _c_str(r["expected"]), r["aux"], r["naux"],
                      r["text_variant"], s_or_null(r["text_field"]), slen(r["text_field"]),
                      s_or_null(r["other_variant"]), slen(r["other_variant"]), s_or_null(r["other_field"]),
                      slen(r["other_field"])))
    out.append("};")
    return "\n".join(out) + "\n"


def write_model_header(model_path=MODEL, gen_dir=GEN_DIR):
    """Write gen_dir/meerkat_model.h when its content changed; returns gen_dir."""
    text = generate_model_header(model_path)
    os.makedirs(gen_dir, exist_ok=True)
    path = os.path.join(gen_dir, "meerkat_model.h")
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return gen_dir
    except OSError:
        pass
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return gen_dir


def _cdef_part(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        text = f.read()
    return text.split("/* BEGIN CDEF */", 1)[1].split("/* END CDEF */", 1)[0]


def _flags():
    # hidden visibility: internal calls bind directly instead of through the PLT
    compile_args = ["-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-semantic-interposition"]
    compile_args.append("-pthread")
    link_args = ["-pthread"]
    if os.environ.get("MOBSTORE_NATIVE_DEBUG") == "1":
        compile_args += ["-O0", "-g"]
    else:
        # -O3: the typed decode interprets the model tables, and gcc's -O3 inlining and
        # unrolling over them is worth it (in-process transcript digest, 4,000 x 1 KiB, one
        # thread: -O2 +7.7% vs the pre-model -O2 build, -O3 +1.9%; the pre-model code itself
        # gained nothing from -O3).
        compile_args += ["-O3"]
    sanitize = os.environ.get("MOBSTORE_SANITIZE")
    if sanitize == "1":
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        compile_args += san + ["-g"]
        link_args += san
    elif sanitize == "thread":
        san = ["-fsanitize=thread", "-fno-omit-frame-pointer"]
        compile_args += san + ["-g"]
        link_args += san
    return compile_args, link_args


def _rel(path):
    # setuptools wants source paths relative to the project root (its cwd)
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def make_builder(absolute=False):
    """An FFI builder; setuptools wants project-relative source paths,
    FFI.compile(tmpdir=...) changes directory and needs absolute ones."""
    fix = (lambda p: p) if absolute else _rel
    gen = write_model_header()
    builder = FFI()
    builder.cdef(_cdef_part("sha256.h") + _cdef_part("canon.h"))
    compile_args, link_args = _flags()
    builder.set_source(
        "engine._canon_native",
        '#include "canon.h"\n',
        sources=[fix(os.path.join(HERE, s)) for s in SOURCES],
        include_dirs=[fix(HERE), fix(gen)],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return builder


ffibuilder = make_builder()


def build_in_place():
    """Compile in a temporary directory and copy the module into engine/."""
    old = os.getcwd()
    tmp = tempfile.mkdtemp(prefix="mobstore-build-")
    try:
        os.chdir(ROOT)
        lib_path = make_builder(absolute=True).compile(tmpdir=tmp, verbose=True)
        name = os.path.basename(lib_path)
        if sys.implementation.name == "cpython" and not hasattr(sys, "gettotalrefcount"):
            # cffi's generated C uses the limited API on release CPython: use the
            # same `.abi3.so` name that `pip install` writes, so the two build
            # routes replace each other instead of one shadowing the other
            name = "_canon_native.abi3.so"
        dest = os.path.join(ROOT, "engine", name)
        # copy then rename: never truncate a .so that a running process maps
        shutil.copyfile(lib_path, dest + ".tmp")
        os.replace(dest + ".tmp", dest)
        # exactly one build in engine/: a stale one with a more specific
        # suffix (e.g. left by `pip install -e`) would shadow this one
        engine_dir = os.path.join(ROOT, "engine")
        for name in os.listdir(engine_dir):
            if name.startswith("_canon_native.") and name.endswith(".so") and name != os.path.basename(dest):
                os.unlink(os.path.join(engine_dir, name))
        print("built", dest)
        return dest
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--header"]:
        sys.stdout.write(generate_model_header())
        sys.exit(0)
    build_in_place()
    sys.exit(0)
