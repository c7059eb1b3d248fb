"""The README stays true: its first lines are the two commands CI runs, and its usage
example runs as written."""

from __future__ import annotations

import os
import runpy

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        return fh.read()


def test_first_lines_are_the_ci_commands():
    first = [line.strip() for line in _readme().splitlines()[:2]]
    assert first == ['pip install -e ".[test]" && mobstore demo', "pytest"]
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as fh:
        ci = fh.read()
    assert 'pip install -e ".[test]" && mobstore demo' in ci and "\npytest\n" in ci


def test_usage_example_runs(tmp_path, monkeypatch, capsys):
    code = _readme().split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script))
    out = capsys.readouterr().out
    assert '"boundary":"run_start"' in out and out.strip().endswith("True")
    assert (tmp_path / "agents.db").exists()
