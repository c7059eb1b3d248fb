"""Fixtures of the fault sweep."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


@pytest.fixture
def workdir(tmp_path):
    """Where the faulted copies live: tmpfs when the machine has one. The shim counts and
    fails calls whatever the file system; on tmpfs an fsync costs nothing, so a sweep of
    thousands of runs does not wait on a disk shared with other work."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        path = tempfile.mkdtemp(prefix="mobstore-faults-", dir=shm)
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield str(tmp_path)
