"""cffi builder for engine._canon_native (never imports `engine`).

Used by setup.py (``cffi_modules=["_native/build_canon.py:ffibuilder"]``) and
runnable directly to build in place::

    python _native/build_canon.py          # writes engine/_canon_native*.so

Environment:
    MOBSTORE_NATIVE_DEBUG=1   -O0 -g instead of -O2
    MOBSTORE_SANITIZE=1       -fsanitize=address,undefined (run the tests with
                              LD_PRELOAD=$(gcc -print-file-name=libasan.so))
"""

import os
import shutil
import sys
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOURCES = ["json_parse.c", "numbers.c", "message.c", "transcript.c", "writer.c", "sha256.c", "jcs.c", "jcs_number.c"]


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
        compile_args += ["-O2"]
    if os.environ.get("MOBSTORE_SANITIZE") == "1":
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
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
    builder = FFI()
    builder.cdef(_cdef_part("sha256.h") + _cdef_part("canon.h"))
    compile_args, link_args = _flags()
    builder.set_source(
        "engine._canon_native",
        '#include "canon.h"\n',
        sources=[fix(os.path.join(HERE, s)) for s in SOURCES],
        include_dirs=[fix(HERE)],
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
    build_in_place()
    sys.exit(0)
