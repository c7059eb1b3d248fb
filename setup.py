"""Only the native build lives here (cffi has no pyproject key).

MOBSTORE_NO_NATIVE=1 installs the pure-Python package on purpose; otherwise
the cffi extension is required and a missing compiler fails the install.
"""

import os

from setuptools import setup

if os.environ.get("MOBSTORE_NO_NATIVE") == "1":
    setup()
else:
    setup(cffi_modules=["_native/build_canon.py:ffibuilder"])
