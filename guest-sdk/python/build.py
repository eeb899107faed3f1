#!/usr/bin/env python3
"""Builds a Python Sluice plugin into a WebAssembly component.

    <toolchain>/bin/python build.py --plugin DIR --wit W [--world WORLD] --out OUT.wasm

- ``DIR`` holds the plugin: its module ``app.py`` (which decorates one
  function or class with ``@sluice_sdk.processor``, or one class with
  ``@sluice_sdk.aggregator``) and any modules and packages next to it that
  ``app.py`` imports. ``tests/``, hidden entries, ``__pycache__`` and
  ``*.wasm`` are left out.
- ``W`` is a directory holding ``plugin.wit`` (``sluice:plugin@0.1.0``).
- ``WORLD`` is ``record-processor`` or ``record-aggregator``. Without
  ``--world`` it is read off the plugin: ``app.py`` is imported on this
  Python, with the SDK on its path, and the decorator it used decides
  (if the import fails here, its source is searched for ``@processor`` /
  ``@aggregator``). A plugin with both, or neither, is refused.
- The SDK is the ``sluice_sdk`` package next to this file.

Everything is staged in a temporary directory (componentize-py writes its
bytecode caches next to the sources it compiles), and componentize-py runs
with ``--stub-wasi``: the component imports only ``sluice:plugin/log``
(and ``state`` for a processor) and ``types``. The component is written
to ``OUT`` only if the build succeeds. Exit status: 0 built, 1 build
failed, 2 bad usage or missing toolchain.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPONENTIZE_PY = "0.25.1"
PYTEST = "8.4.2"
INSTALL = (
    'T="${SLUICE_TOOLCHAINS:-$HOME/.cache/sluice/toolchains}/python" && '
    'python3 -m venv "$T" && '
    f'"$T/bin/pip" install --disable-pip-version-check -q componentize-py=={COMPONENTIZE_PY} pytest=={PYTEST}'
)
# world -> (glue module, the class it exports, the decorator of the plugin)
WORLDS = {
    "record-processor": ("sluice_sdk._component", "Processor", "processor"),
    "record-aggregator": ("sluice_sdk._component_aggregator", "Aggregator", "aggregator"),
}
KNOWN_WORLDS = ("record-processor", "record-aggregator", "timestamp-extractor")
MODULE = "app"
ENTRY = "sluice_entry"
SKIP_DIRS = {"__pycache__", "tests", "target", "node_modules"}


class BuildError(Exception):
    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def componentize_py():
    """The componentize-py next to this Python (the toolchain venv), or on PATH."""
    here = Path(sys.executable).parent / "componentize-py"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("componentize-py")
    if found:
        return found
    raise BuildError(
        f"componentize-py is not installed for {sys.executable}.\n"
        f"Install the Python toolchain with:\n    {INSTALL}\n"
        "and build with that toolchain's python ($T/bin/python).",
        status=2,
    )


def check_version(tool):
    try:
        out = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"cannot run {tool}: {e}", status=2) from None
    version = out.split()[-1] if out else "unknown"
    if version != COMPONENTIZE_PY:
        print(
            f"sluice: warning: componentize-py {version} found, the SDK is tested with "
            f"{COMPONENTIZE_PY} ({INSTALL})",
            file=sys.stderr,
        )


def stage_plugin(src, dst):
    """Copies the plugin's sources (not its tests, caches or outputs)."""

    def ignore(directory, names):
        skipped = set()
        for name in names:
            path = Path(directory) / name
            if name.startswith(".") or name.endswith(".wasm"):
                skipped.add(name)
            elif path.is_dir() and name in SKIP_DIRS:
                skipped.add(name)
            elif name == "conftest.py" or (name.startswith("test_") and name.endswith(".py")):
                skipped.add(name)
        return skipped

    shutil.copytree(src, dst, ignore=ignore, symlinks=False)


def stage_sdk(dst):
    sdk = Path(__file__).resolve().parent / "sluice_sdk"
    if not (sdk / "__init__.py").is_file():
        raise BuildError(f"the SDK package is missing: {sdk}/__init__.py", status=2)
    (dst / "sluice_sdk").mkdir(parents=True)
    for f in sorted(sdk.glob("*.py")):
        shutil.copy2(f, dst / "sluice_sdk" / f.name)


# Run with ``python -I -B``: imports the plugin as the component will, on
# plain CPython, and writes which objects each decorator registered.
_DETECT = """
import json, sys
sdk, plugin, out = sys.argv[1:4]
sys.path[:0] = [sdk, plugin]
found = {"error": None}
try:
    import app
except BaseException as e:
    import traceback
    found["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
from sluice_sdk import aggregate, runtime
name = lambda o: getattr(o, "__qualname__", None) or repr(o)
found["processor"] = [name(o) for o in runtime.registered]
found["aggregator"] = [name(o) for o in aggregate.registered]
with open(out, "w") as f:
    json.dump(found, f)
"""

_DECORATOR = re.compile(r"^[ \t]*@[ \t]*(?:[A-Za-z_]\w*[ \t]*\.[ \t]*)*(processor|aggregator)\b", re.M)


def scan_decorators(plugin_dir):
    """``@processor`` / ``@aggregator`` lines in the plugin's sources, by
    decorator: {kind: ["file:line", ...]}."""
    found = {"processor": [], "aggregator": []}
    for path in sorted(Path(plugin_dir).rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for m in _DECORATOR.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found[m.group(1)].append(f"{path.relative_to(plugin_dir)}:{line}")
    return found


def detect_world(plugin, sdk_dir, plugin_dir):
    """The world of the staged plugin: which of ``@processor`` and
    ``@aggregator`` it uses. Imports ``app`` in a child Python (isolated,
    standard library and staged files only, no bytecode written); if that
    fails here (say, syntax of a newer
    Python than this one), searches the sources for the decorators."""
    with tempfile.TemporaryDirectory(prefix="sluice-py-detect-") as tmp:
        out = Path(tmp) / "found.json"
        try:
            subprocess.run(
                [sys.executable, "-I", "-S", "-B", "-c", _DETECT, str(sdk_dir), str(plugin_dir), str(out)],
                cwd=tmp, capture_output=True, timeout=120,
            )
            found = json.loads(out.read_text())
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            found = {"error": f"the plugin could not be imported to detect its kind: {e}"}
    error = found.get("error")
    if error:
        found = scan_decorators(plugin_dir)
    kinds = [k for k in ("processor", "aggregator") if found.get(k)]
    if len(kinds) == 1:
        return next(w for w, (_, _, k) in WORLDS.items() if k == kinds[0])
    if error:
        what, s = f"importing {plugin}/app.py failed here ({error}), and its sources", ""
    else:
        what, s = f"{plugin}/app.py", "s"
    if kinds:
        message = (
            f"{what} use{s} both @processor ({', '.join(found['processor'])}) and @aggregator "
            f"({', '.join(found['aggregator'])}); a plugin is one or the other: keep one of them"
        )
    else:
        message = (
            f"{what} register{s} no processor and no aggregator: decorate a function or class "
            "with @sluice_sdk.processor, or a class with @sluice_sdk.aggregator, in app.py"
        )
    raise BuildError(message, status=1 if error else 2)


def explain(output, plugin):
    """componentize-py's failure, without its wrapper: a plugin that fails
    to import shows as its own Python traceback."""
    output = output.strip()
    marker = "AssertionError: "
    if marker in output:  # componentize-py reports pre-init failures so
        output = output.split(marker, 1)[1].split("\n\nCaused by:", 1)[0]
    output = output.split("\nStack backtrace:", 1)[0].strip()
    # Inside the build, python-path entries are mounted as /0 (SDK), /1 (plugin).
    return output.replace('File "/1/', f'File "{plugin}/').replace('File "/0/', 'File "<sdk>/')


def build(plugin, wit, world, out, quiet=False):
    plugin = Path(plugin).resolve()
    wit = Path(wit).resolve()
    out = Path(out).resolve()
    if world is not None and world not in WORLDS:
        known = "is not supported yet" if world in KNOWN_WORLDS else "is not a Sluice world"
        raise BuildError(
            f"the Python SDK builds the {' and '.join(WORLDS)} worlds; {world!r} {known}",
            status=2,
        )
    if not (plugin / f"{MODULE}.py").is_file():
        raise BuildError(
            f"{plugin} is not a Python plugin: it has no {MODULE}.py "
            f"(the module that decorates its processor with @sluice_sdk.processor, "
            f"or its aggregator with @sluice_sdk.aggregator)",
            status=2,
        )
    wit_file = wit / "plugin.wit" if wit.is_dir() else wit
    if not wit_file.is_file():
        raise BuildError(f"no WIT found at {wit_file}", status=2)
    tool = componentize_py()
    check_version(tool)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sluice-py-build-") as tmp:
        tmp = Path(tmp)
        sdk_dir, plugin_dir = tmp / "sdk", tmp / "plugin"
        stage_sdk(sdk_dir)
        stage_plugin(plugin, plugin_dir)
        if world is None:
            world = detect_world(plugin, sdk_dir, plugin_dir)
        glue, export, kind = WORLDS[world]
        (sdk_dir / f"{ENTRY}.py").write_text(
            "# Generated by sluice_sdk's build.py: the plugin's module, then the glue\n"
            f"# that exports its {kind}.\n"
            f"import {MODULE}  # noqa: F401\n"
            f"from {glue} import {export}  # noqa: F401\n"
        )
        staged_out = tmp / "out.wasm"
        cmd = [
            tool,
            "-d", str(wit),
            "-w", world,
            "--world-module", "wit_world",
            "componentize",
            "--stub-wasi",
            ENTRY,
            "-p", str(sdk_dir),
            "-p", str(plugin_dir),
            "-o", str(staged_out),
        ]
        env = dict(os.environ)
        # componentize-py adds $VIRTUAL_ENV's site-packages to the path; the
        # plugin gets the standard library and what is staged, nothing else.
        env.pop("VIRTUAL_ENV", None)
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        env["RUST_BACKTRACE"] = env["RUST_LIB_BACKTRACE"] = "0"
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not staged_out.is_file():
            detail = explain(proc.stderr + "\n" + proc.stdout, plugin)
            raise BuildError(
                f"building the Python plugin {plugin} failed "
                f"(componentize-py exited with {proc.returncode}):\n{detail}"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        shutil.copyfile(staged_out, partial)
        os.replace(partial, out)
    if not quiet:
        size = out.stat().st_size / (1 << 20)
        print(
            f"sluice: built {out} ({size:.1f} MiB, {world}) from {plugin} in "
            f"{time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Build a Python Sluice plugin (app.py) into a WebAssembly component."
    )
    parser.add_argument("--plugin", required=True, help="the plugin's directory (holds app.py)")
    parser.add_argument("--wit", required=True, help="directory holding plugin.wit")
    parser.add_argument(
        "--world",
        help="the WIT world to build: record-processor or record-aggregator "
        "(default: read off the plugin's decorator)",
    )
    parser.add_argument("--out", required=True, help="where to write the component (.wasm)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        build(args.plugin, args.wit, args.world, args.out, quiet=args.quiet)
    except BuildError as e:
        print(f"sluice: error: {e}", file=sys.stderr)
        return e.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
