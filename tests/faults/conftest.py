"""The full fault sweep is selected with `-m stress`; a plain `pytest` deselects it (not a
skip: it is the long version of a test that runs by default)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def pytest_collection_modifyitems(config, items):
    if "stress" in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        in_faults = "tests/faults/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("faults/")
        (drop if in_faults and item.get_closest_marker("stress") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep



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
