"""build.py's checks that run without componentize-py."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]


def run_build(*args):
    return subprocess.run(
        [sys.executable, str(SDK / "build.py"), *args], capture_output=True, text=True
    )


def test_a_directory_without_app_py_is_refused(tmp_path):
    p = run_build("--plugin", str(tmp_path), "--wit", str(REPO / "wit"), "--out", str(tmp_path / "o.wasm"))
    assert p.returncode == 2
    assert "has no app.py" in p.stderr
    assert not (tmp_path / "o.wasm").exists()


def test_an_unsupported_world_is_refused(tmp_path):
    (tmp_path / "app.py").write_text("")
    p = run_build(
        "--plugin", str(tmp_path), "--wit", str(REPO / "wit"),
        "--world", "record-aggregator", "--out", str(tmp_path / "o.wasm"),
    )
    assert p.returncode == 2 and "not supported" in p.stderr


def load_build():
    spec = importlib.util.spec_from_file_location("sluice_build", SDK / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_componentize_py_names_the_install_command(tmp_path, monkeypatch):
    build = load_build()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(build.BuildError) as e:
        build.componentize_py()
    assert e.value.status == 2
    assert build.INSTALL in str(e.value)
    assert f"componentize-py=={build.COMPONENTIZE_PY}" in build.INSTALL


def test_import_failures_show_as_the_plugins_traceback():
    build = load_build()
    output = """Traceback (most recent call last):
  File "/t/bin/componentize-py", line 8, in <module>
    sys.exit(script())
AssertionError: Traceback (most recent call last):
  File "/0/sluice_entry.py", line 3, in <module>
    import app
  File "/1/app.py", line 1
SyntaxError: invalid syntax


Caused by:
    SyntaxError: invalid syntax (app.py, line 1)

Stack backtrace:
   0: <anyhow::Error>::msg"""
    assert build.explain(output, Path("/src/p")) == """Traceback (most recent call last):
  File "<sdk>/sluice_entry.py", line 3, in <module>
    import app
  File "/src/p/app.py", line 1
SyntaxError: invalid syntax"""
