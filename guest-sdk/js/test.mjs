#!/usr/bin/env node
// Runs a JavaScript/TypeScript Sluice plugin's own tests with node's test
// runner: no broker, no component (`sluice plugin test <dir>` runs this).
//
//   node test.mjs --plugin <dir> [--toolchain <T>] [-- <node --test options>]
//
// 1. Finds the tests: every .js/.mjs/.ts/.mts file under a `test/` or
//    `tests/` folder of the plugin, and elsewhere the files named
//    `*.test.*`, `*-test.*` or `*_test.*` (node_modules and dot folders
//    aside).
// 2. A TypeScript plugin's entry is type-checked first, as the build does.
// 3. Bundles each test with esbuild (which strips TypeScript's types), with
//    `@sluice/sdk` and `@sluice/sdk/testing` resolving to the SDK next to
//    this file; `import.meta.url` (and `dirname`, `filename`) are the test
//    file's own, so a test can find its fixtures.
// 4. Runs the bundles with `node --test --enable-source-maps`, in the
//    plugin's directory: failures point at the test's own lines. The exit
//    status is node's.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { BuildError, checkToolchain, findEntry, formatMessages, importFrom, isTypeScript, typecheck, writeEditorTypes } from './build.mjs';

const SDK_DIR = dirname(fileURLToPath(import.meta.url));
const SOURCE = /\.(js|mjs|ts|mts)$/;
const NAMED = /[._-]test\.(js|mjs|ts|mts)$/;

function usage() {
  return 'usage: node test.mjs --plugin <dir> [--toolchain <dir>] [-- <node --test options>]';
}

function parseArgs(argv) {
  const opts = { node: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      opts.node = argv.slice(i + 1);
      break;
    }
    if (a === '--help') {
      opts.help = true;
      continue;
    }
    const [name, inline] = a.startsWith('--') ? a.slice(2).split(/=(.*)/s, 2) : [];
    if (name !== 'plugin' && name !== 'toolchain') throw new BuildError(`unexpected argument \`${a}\`\n${usage()}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new BuildError(`--${name} needs a value`);
    opts[name] = value;
  }
  return opts;
}

/** The plugin's test files, sorted. */
export function findTests(pluginDir) {
  const found = [];
  const walk = (dir, inTests, depth) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const name = entry.name;
      if (name.startsWith('.') || name === 'node_modules') continue;
      const path = join(dir, name);
      if (entry.isDirectory()) {
        if (depth < 8) walk(path, inTests || name === 'test' || name === 'tests', depth + 1);
      } else if (SOURCE.test(name) && !name.endsWith('.d.ts') && (inTests || NAMED.test(name))) {
        found.push(path);
      }
    }
  };
  walk(pluginDir, false, 0);
  return found.sort();
}

/** Runs the tests of the plugin in `opts.plugin`; returns node's exit status. */
export async function test(opts) {
  if (!opts.plugin) throw new BuildError(`--plugin is required\n${usage()}`);
  const pluginDir = resolve(opts.plugin);
  if (!existsSync(pluginDir) || !statSync(pluginDir).isDirectory()) {
    throw new BuildError(`plugin directory ${pluginDir} does not exist`);
  }
  const t = resolve(opts.toolchain ?? join(process.env.SLUICE_TOOLCHAINS || join(homedir(), '.cache', 'sluice', 'toolchains'), 'js'));
  checkToolchain(t);
  const tests = findTests(pluginDir);
  if (tests.length === 0) {
    throw new BuildError(
      `no tests in ${pluginDir}: a test is a .js/.ts file under test/ (or named *.test.js, *.test.ts), ` +
        "using node's test runner, for example:\n" +
        "  import { test } from 'node:test';\n  import assert from 'node:assert/strict';\n" +
        "  import { run } from '@sluice/sdk/testing';\n  import { processor } from '../src/index.js';",
    );
  }
  const entry = findEntry(pluginDir);
  const esbuild = await importFrom(t, 'esbuild', 'lib/main.js');
  const workDir = realpathSync(mkdtempSync(join(tmpdir(), 'sluice-js-test-')));
  try {
    if (isTypeScript(entry)) {
      writeEditorTypes(pluginDir);
      typecheck(t, pluginDir, [entry], workDir);
    }
    const bundles = [];
    for (const file of tests) {
      const rel = relative(pluginDir, file);
      const out = join(workDir, 'tests', rel.replace(SOURCE, '.mjs'));
      const url = pathToFileURL(file).href;
      try {
        await esbuild.build({
          entryPoints: [file],
          outfile: out,
          bundle: true,
          format: 'esm',
          platform: 'node',
          target: 'node20',
          sourcemap: 'inline',
          alias: { '@sluice/sdk': SDK_DIR },
          define: {
            'import.meta.url': JSON.stringify(url),
            'import.meta.filename': JSON.stringify(file),
            'import.meta.dirname': JSON.stringify(dirname(file)),
          },
          logLevel: 'silent',
          write: true,
        });
      } catch (e) {
        if (e.errors?.length) throw new BuildError(`bundling the test ${rel} failed:\n${formatMessages(e.errors)}`);
        throw e;
      }
      bundles.push(out);
    }
    // A run of its own, with node's own reporter, also when this script
    // runs under a test runner (which tells its children by this variable).
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', ...opts.node, ...bundles], {
      cwd: pluginDir,
      env,
      stdio: 'inherit',
    });
    if (r.error) throw new BuildError(`could not run node --test: ${r.error.message}`);
    return r.status ?? 1;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function main() {
  try {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.help) {
      console.log(usage());
      return 0;
    }
    return await test(opts);
  } catch (e) {
    console.error(e instanceof BuildError ? `error: ${e.message}` : `error: ${e?.stack ?? e}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
