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
    for world, why in [("timestamp-extractor", "not supported yet"), ("record-mangler", "not a Sluice world")]:
        p = run_build(
            "--plugin", str(tmp_path), "--wit", str(REPO / "wit"),
            "--world", world, "--out", str(tmp_path / "o.wasm"),
        )
        assert p.returncode == 2 and why in p.stderr, p.stderr
        assert "record-processor and record-aggregator" in p.stderr


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


PROCESSOR = """
from sluice_sdk import processor

@processor
def shout(record):
    return record
"""

AGGREGATOR = """
from sluice_sdk import aggregator

@aggregator
class Count:
    def initial(self, key):
        return 0

    def add(self, n, record):
        return n + 1
"""


BUILD = load_build()


def detect(tmp_path, source, **modules):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "app.py").write_text(source)
    for name, text in modules.items():
        (tmp_path / f"{name}.py").write_text(text)
    return BUILD.detect_world(tmp_path, SDK, tmp_path)


def test_the_world_is_read_off_the_decorator(tmp_path):
    assert detect(tmp_path / "p", PROCESSOR) == "record-processor"
    assert detect(tmp_path / "a", AGGREGATOR) == "record-aggregator"
    # Registered by a module app.py imports: found too (the import runs).
    assert detect(tmp_path / "h", "import helper\n", helper=AGGREGATOR) == "record-aggregator"
    assert not list(tmp_path.rglob("__pycache__")), "no bytecode left in the plugin"


def test_both_or_neither_is_refused_naming_what_was_found(tmp_path):
    build = BUILD
    with pytest.raises(build.BuildError) as e:
        detect(tmp_path, PROCESSOR + AGGREGATOR)
    assert e.value.status == 2
    assert "both @processor (shout) and @aggregator (Count)" in str(e.value)
    with pytest.raises(build.BuildError) as e:
        detect(tmp_path, "x = 1\nprint('imported')\n")
    assert e.value.status == 2
    assert "no processor and no aggregator" in str(e.value)
    assert "@sluice_sdk.processor" in str(e.value) and "@sluice_sdk.aggregator" in str(e.value)


def test_a_plugin_that_does_not_import_here_is_searched_for_its_decorator(tmp_path):
    build = BUILD
    missing = "import module_only_the_component_has\n"
    assert detect(tmp_path, missing + AGGREGATOR) == "record-aggregator"
    assert detect(tmp_path, missing + "import sluice_sdk\n@sluice_sdk.processor\ndef f(r): return r\n") == "record-processor"
    with pytest.raises(build.BuildError) as e:
        detect(tmp_path, missing)
    assert e.value.status == 1
    assert "importing" in str(e.value) and "module_only_the_component_has" in str(e.value)
    with pytest.raises(build.BuildError) as e:
        detect(tmp_path, missing + PROCESSOR + AGGREGATOR)
    assert "@processor (app.py:5) and @aggregator (app.py:11)" in str(e.value), str(e.value)
