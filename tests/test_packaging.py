"""Packaging promises: a failed C build explains itself, the sdist carries the tests with
their fixtures, the package is typed, and the license file ships."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def _copy_project(dest):
    ignore = shutil.ignore_patterns(".git", "*.so", "__pycache__", ".ci-*", "*.egg-info", "build", ".hypothesis",
                                    ".pytest_cache", ".benchmarks")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def test_failed_compile_names_the_fix(tmp_path):
    work = _copy_project(tmp_path / "p")
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false")
    env.pop("MOBSTORE_NO_NATIVE", None)
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "could not be built" in proc.stderr and "MOBSTORE_NO_NATIVE=1 pip install" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sdist_carries_tests_fixtures_docs_and_license(tmp_path):
    work = _copy_project(tmp_path / "p")
    out = tmp_path / "dist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name = proc.stdout.strip().splitlines()[-1]
    with tarfile.open(out / name) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("LICENSE", "engine/py.typed", "schema.sql", "_native/canon.h", "docs/index.md",
                   "tests/conftest.py", "tests/fixtures/meerkat/realm-0.7.28-attempted-turn.sqlite3",
                   "tests/fixtures/meerkat/PROVENANCE.md", "tests/vectors/meerkat-0.8.26-sample.jsonl",
                   "tests/corpus/bad/cli-cases.jsonl"):
        assert needed in names, needed
    assert not any(n.endswith(".so") for n in names)


def test_package_is_typed_and_licensed():
    import engine

    here = os.path.dirname(engine.__file__)
    assert os.path.exists(os.path.join(here, "py.typed"))
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as fh:
        assert fh.readline().strip() == "MIT License"


@pytest.mark.skipif(sys.platform == "win32", reason="the refusal itself is what runs on Windows")
def test_windows_build_is_refused_with_the_fallback_named(tmp_path):
    work = _copy_project(tmp_path / "p")
    code = "import sys; sys.platform = 'win32'; sys.argv = ['setup.py', '--version']; exec(open('setup.py').read())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "MOBSTORE_NO_NATIVE=1" in proc.stderr
