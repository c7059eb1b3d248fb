"""Only the native build lives here (cffi has no pyproject key).

MOBSTORE_NO_NATIVE=1 installs the pure-Python package on purpose; otherwise the cffi
extension is required and a failed compile stops the install with a message that says
what is missing and how to install without it.
"""

import os
import sys

if sys.platform == "win32" and os.environ.get("MOBSTORE_NO_NATIVE") != "1":
    # The C sources use pthreads and GCC/Clang builtins (cpuid.h); MSVC is not supported.
    sys.exit("mobstore: the C extension does not build on Windows (MSVC) yet; install the "
             "pure-Python fallback with MOBSTORE_NO_NATIVE=1 (set the variable, then pip install).")

from setuptools import setup  # noqa: E402 - after the platform check, which needs no setuptools
from setuptools.command.build_ext import build_ext

HINT = """
mobstore: the C digest extension (_native/) could not be built: {error}
  It needs a C compiler (gcc or clang) and the Python headers, e.g.
    Debian/Ubuntu: apt-get install build-essential python3-dev
    Fedora:        dnf install gcc python3-devel
    macOS:         xcode-select --install
  Or install the pure-Python fallback (same results, about 20-100x slower digests):
    MOBSTORE_NO_NATIVE=1 pip install mobstore
"""


class BuildExtWithHint(build_ext):
    """build_ext whose failure ends in one readable message instead of a compiler traceback."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, missing headers, no compiler
            sys.stderr.write(HINT.format(error=" ".join(str(exc).split()) or type(exc).__name__))
            raise SystemExit(1) from None


if os.environ.get("MOBSTORE_NO_NATIVE") == "1":
    setup()
else:
    setup(
        cffi_modules=["_native/build_canon.py:ffibuilder"],
        cmdclass={"build_ext": BuildExtWithHint},
        # The module uses only the stable ABI (it is built as _canon_native.abi3.so): tag the
        # wheel abi3 so one wheel serves every CPython >= 3.10.
        options={"bdist_wheel": {"py_limited_api": "cp310"}},
    )
