#!/usr/bin/env python3
"""Builds a Python Sluice plugin into a WebAssembly component.

    <toolchain>/bin/python build.py --plugin DIR --wit W --world record-processor --out OUT.wasm

- ``DIR`` holds the plugin: its module ``app.py`` (which decorates one
  function or class with ``@sluice_sdk.processor``) and any modules and
  packages next to it that ``app.py`` imports. ``tests/``, hidden entries,
  ``__pycache__`` and ``*.wasm`` are left out.
- ``W`` is a directory holding ``plugin.wit`` (``sluice:plugin@0.1.0``).
- The SDK is the ``sluice_sdk`` package next to this file.

Everything is staged in a temporary directory (componentize-py writes its
bytecode caches next to the sources it compiles), and componentize-py runs
with ``--stub-wasi``: the component imports only ``sluice:plugin/log``,
``state`` and ``types``. The component is written to ``OUT`` only if the
build succeeds. Exit status: 0 built, 1 build failed, 2 bad usage or
missing toolchain.
"""

import argparse
import os
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
WORLDS = {"record-processor": "sluice_sdk._component"}
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
    if world not in WORLDS:
        raise BuildError(
            f"the Python SDK builds the {', '.join(WORLDS)} world; {world!r} is not supported yet",
            status=2,
        )
    if not (plugin / f"{MODULE}.py").is_file():
        raise BuildError(
            f"{plugin} is not a Python plugin: it has no {MODULE}.py "
            f"(the module that decorates its processor with @sluice_sdk.processor)",
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
        (sdk_dir / f"{ENTRY}.py").write_text(
            "# Generated by sluice_sdk's build.py: the plugin's module, then the glue\n"
            "# that exports its processor.\n"
            f"import {MODULE}  # noqa: F401\n"
            f"from {WORLDS[world]} import Processor  # noqa: F401\n"
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
            f"sluice: built {out} ({size:.1f} MiB) from {plugin} in "
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
    parser.add_argument("--world", default="record-processor", help="the WIT world to build")
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
