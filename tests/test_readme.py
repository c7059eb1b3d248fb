"""The README stays true: its first lines are the two commands CI runs, and its usage
example runs as written."""

from __future__ import annotations

import os
import runpy

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        return fh.read()


def test_first_screen_is_title_pitch_and_the_ci_commands():
    lines = _readme().splitlines()
    assert lines[0] == "# mobstore" and lines[2].startswith("**")  # title, one-line pitch
    commands = [line.strip() for line in lines[:12] if line.startswith("    ")]
    assert commands == ['pip install -e ".[test]" && mobstore demo', "pytest"]
    assert "mobstore demo` runs" in "\n".join(lines[:12])  # what the demo proves
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


def test_usage_example_type_checks_strictly(tmp_path):
    """A user's script built from the README example passes mypy --strict against the
    installed package (py.typed, annotated public API)."""
    import subprocess
    import sys

    code = _readme().split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "user_script.py"
    script.write_text(code)
    # An editable install is an import hook mypy cannot follow; MYPYPATH points it at the package
    # the way a wheel install would (site-packages/engine with py.typed).
    env = dict(os.environ, MYPYPATH=os.path.abspath(ROOT))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
                           str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The check is live: a wrong call into the same API is caught.
    script.write_text(code + "\nwith engine.open('x.db') as s:\n    s.append_messages(sid, 5)\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
                           str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
    assert proc.returncode == 1 and "append_messages" in proc.stdout, proc.stdout
