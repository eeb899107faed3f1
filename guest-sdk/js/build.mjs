#!/usr/bin/env node
// Builds a JavaScript/TypeScript Sluice plugin into a WebAssembly component.
//
//   node build.mjs --plugin <dir> --wit <wit-dir> [--world <world>] \
//                  --toolchain <T> --out <out.wasm>
//   node build.mjs --install-command [--toolchain <T>]   # prints how to install T
//
// 1. Finds the plugin's entry: package.json "main" if set, else the first of
//    src/index.ts, src/index.js, index.ts, index.js (also .mts/.mjs).
// 2. A TypeScript entry is type-checked with tsc (the plugin's tsconfig.json
//    if it has one, `@sluice/sdk` resolving to the SDK's types next to this
//    file); a type error fails the build.
// 3. Bundles it with esbuild into one ES module, `@sluice/sdk` resolving to
//    the SDK next to this file. The world is the one the entry exports:
//    `processor` (record-processor) or `aggregator` (record-aggregator),
//    unless --world names one. Behind the entry goes a module that binds
//    the world's WIT imports (sluice:plugin/log, and sluice:plugin/state for
//    a processor) and exports the interface.
// 4. Componentizes it with componentize-js, every WASI feature disabled: the
//    component imports only sluice:plugin/{log,state,types}@0.1.0 (an
//    aggregator: log and types).
//
// The toolchain (componentize-js, esbuild, tsc) lives in <T>/node_modules,
// at the pinned versions below; nothing is needed next to the SDK or the
// plugin.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { dirname, join, resolve, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SDK_DIR = dirname(fileURLToPath(import.meta.url));

/**
 * The toolchain, pinned: [npm package, exact version]. componentize-js
 * imports preview2-shim without declaring it (it relies on npm hoisting one,
 * which a second `npm install` may undo), so it is pinned here too (at the
 * version it was seen to work with: with 0.26.1 it could not read the WIT
 * directory); jco is what componentize-js depends on, pinned, and it
 * transpiles components for the end-to-end test. typescript (tsc)
 * type-checks TypeScript plugins (jco depends on the same version).
 */
export const TOOLCHAIN = [
  ['@bytecodealliance/componentize-js', '0.23.0'],
  ['@bytecodealliance/jco', '1.35.0'],
  ['@bytecodealliance/preview2-shim', '0.25.0'],
  ['esbuild', '0.28.2'],
  ['typescript', '7.0.2'],
];

/** The worlds this SDK builds, and the export each needs. */
const WORLDS = { 'record-processor': 'processor', 'record-aggregator': 'aggregator' };
const ENTRIES = ['src/index.ts', 'src/index.mts', 'src/index.js', 'src/index.mjs', 'index.ts', 'index.mts', 'index.js', 'index.mjs'];
const WASI_FEATURES = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];

function defaultToolchain() {
  const base = process.env.SLUICE_TOOLCHAINS || join(homedir(), '.cache', 'sluice', 'toolchains');
  return join(base, 'js');
}

function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function installCommand(t) {
  const pkgs = TOOLCHAIN.map(([p, v]) => `${p}@${v}`).join(' ');
  return `npm install --prefix ${shellQuote(t)} --no-audit --no-fund --save-exact ${pkgs}`;
}

export class BuildError extends Error {}

function usage() {
  return `usage: node build.mjs --plugin <dir> --wit <wit-dir> [--world record-processor|record-aggregator] --toolchain <dir> --out <out.wasm>
       node build.mjs --install-command [--toolchain <dir>]`;
}

function parseArgs(argv) {
  const opts = {};
  const flags = new Set(['install-command', 'help', 'keep-bundle']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new BuildError(`unexpected argument \`${a}\`\n${usage()}`);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (flags.has(name)) {
      opts[name] = true;
      continue;
    }
    if (!['plugin', 'wit', 'world', 'toolchain', 'out'].includes(name)) {
      throw new BuildError(`unknown option \`--${name}\`\n${usage()}`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new BuildError(`--${name} needs a value`);
    opts[name] = value;
  }
  return opts;
}

/** The toolchain's packages, or a BuildError naming the install command. */
export function checkToolchain(t) {
  const problems = [];
  for (const [pkg, version] of TOOLCHAIN) {
    const manifest = join(t, 'node_modules', pkg, 'package.json');
    if (!existsSync(manifest)) {
      problems.push(`${pkg} is not installed`);
      continue;
    }
    const found = JSON.parse(readFileSync(manifest, 'utf8')).version;
    if (found !== version) problems.push(`${pkg} is ${found}, Sluice needs ${version}`);
  }
  if (problems.length) {
    throw new BuildError(
      `the JavaScript toolchain in ${t} is missing or out of date (${problems.join('; ')}).\n` +
        `Install it with:\n  ${installCommand(t)}\n` +
        `(or run ./scripts/setup.sh from the Sluice checkout)`,
    );
  }
}

export async function importFrom(t, pkg, file) {
  return import(pathToFileURL(join(t, 'node_modules', pkg, file)).href);
}

export function findEntry(pluginDir) {
  const manifest = join(pluginDir, 'package.json');
  if (existsSync(manifest)) {
    let main;
    try {
      main = JSON.parse(readFileSync(manifest, 'utf8')).main;
    } catch (e) {
      throw new BuildError(`${manifest}: ${e.message}`);
    }
    if (main !== undefined) {
      const path = resolve(pluginDir, main);
      if (!existsSync(path)) throw new BuildError(`${manifest}: "main" is ${main}, which does not exist`);
      return path;
    }
  }
  for (const candidate of ENTRIES) {
    const path = join(pluginDir, candidate);
    if (existsSync(path)) return path;
  }
  throw new BuildError(
    `no plugin entry in ${pluginDir}: expected package.json "main" or one of ${ENTRIES.join(', ')}`,
  );
}

/**
 * What TypeScript is checked with when the plugin has no tsconfig.json (the
 * template's has the same): the component's JavaScript (ES2022, with the
 * web's console, TextEncoder and URL; no Node.js), modules as esbuild
 * bundles them.
 */
const TS_DEFAULTS = {
  target: 'es2022',
  module: 'esnext',
  moduleResolution: 'bundler',
  lib: ['es2022', 'dom'],
  types: [],
  strict: true,
  isolatedModules: true,
  allowImportingTsExtensions: true,
  skipLibCheck: true,
};

/** The SDK's types: (import path, file next to this script). */
const SDK_TYPES = [
  ['@sluice/sdk', 'index.d.ts'],
  ['@sluice/sdk/testing', 'testing.d.ts'],
];

const TYPE_EXTENSIONS = /\.(ts|mts|cts|tsx)$/;

/** Whether `file` is TypeScript (and so is type-checked). */
export function isTypeScript(file) {
  return TYPE_EXTENSIONS.test(file);
}

function tsc(t, args, cwd) {
  const bin = join(t, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' });
  if (r.error) throw new BuildError(`could not run tsc (${bin}): ${r.error.message}`);
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * The SDK's types in <plugin>/.sluice/sdk, when the plugin's tsconfig.json
 * points there (as the template's does), so that an editor, or `tsc -p .`
 * in the plugin, resolves `@sluice/sdk` too. Written again when they
 * differ; best effort (the build itself does not read them).
 */
export function writeEditorTypes(pluginDir) {
  let tsconfig;
  try {
    tsconfig = readFileSync(join(pluginDir, 'tsconfig.json'), 'utf8');
  } catch {
    return;
  }
  if (!tsconfig.includes('.sluice/sdk/')) return;
  try {
    const dir = join(pluginDir, '.sluice', 'sdk');
    mkdirSync(dir, { recursive: true });
    const ignore = join(pluginDir, '.sluice', '.gitignore');
    if (!existsSync(ignore)) {
      writeFileSync(ignore, '# Written by `sluice plugin build` and `sluice plugin test`: the SDK\'s types, for editors and tsc.\n*\n');
    }
    for (const [, file] of SDK_TYPES) {
      const want = readFileSync(join(SDK_DIR, file));
      const path = join(dir, file);
      if (!existsSync(path) || !readFileSync(path).equals(want)) writeFileSync(path, want);
    }
  } catch {
    // A read-only plugin directory: only editors miss them.
  }
}

/**
 * Type-checks the TypeScript `files` of the plugin in `pluginDir` (and what
 * they import) with the toolchain's tsc: with the options of the plugin's
 * tsconfig.json if it has one, else TS_DEFAULTS; `@sluice/sdk` resolves to
 * the types next to this script, wherever the plugin is. Nothing is
 * emitted. A type error throws a BuildError with tsc's messages
 * (`src/index.ts(12,5): error TS2322: …`).
 */
export function typecheck(t, pluginDir, files, workDir) {
  const tsconfig = join(pluginDir, 'tsconfig.json');
  const own = existsSync(tsconfig);
  // The plugin's own `paths` are kept (made absolute: this configuration
  // is elsewhere), with the SDK's added.
  const paths = {};
  if (own) {
    const shown = tsc(t, ['-p', tsconfig, '--showConfig'], pluginDir);
    if (!shown.ok) throw new BuildError(`${tsconfig}: ${shown.output}`);
    let options;
    try {
      options = JSON.parse(shown.output).compilerOptions ?? {};
    } catch (e) {
      throw new BuildError(`tsc --showConfig ${tsconfig} printed what is not JSON (${e.message}):\n${shown.output}`);
    }
    const base = resolve(pluginDir, options.baseUrl ?? '.');
    for (const [pattern, targets] of Object.entries(options.paths ?? {})) {
      paths[pattern] = targets.map((target) => resolve(base, target));
    }
  }
  for (const [name, file] of SDK_TYPES) paths[name] = [join(SDK_DIR, file)];
  const config = {
    ...(own ? { extends: tsconfig } : {}),
    compilerOptions: {
      ...(own ? {} : TS_DEFAULTS),
      noEmit: true,
      incremental: false,
      composite: false,
      paths,
    },
    files,
    include: [],
  };
  const path = join(workDir, 'tsconfig.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  const checked = tsc(t, ['-p', path, '--pretty', 'false'], pluginDir);
  if (!checked.ok) {
    throw new BuildError(
      `type errors in ${files.map((f) => relative(pluginDir, f) || f).join(', ')} (tsc, ${own ? tsconfig : 'no tsconfig.json: strict defaults'}):\n${checked.output}`,
    );
  }
}

export function formatMessages(messages) {
  return messages
    .map((m) => {
      const loc = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ` : '';
      const line = m.location?.lineText ? `\n    ${m.location.lineText}` : '';
      return `${loc}${m.text}${line}`;
    })
    .join('\n');
}

/**
 * The world the entry's `exports` (names) implement: `world` when given
 * (its export, or a default export, must be there), else `processor` ->
 * record-processor, `aggregator` -> record-aggregator, a default export
 * alone -> record-processor. Both, or none of them, is a BuildError.
 */
export function detectWorld(entry, exports, world) {
  const found = `it exports: ${exports.join(', ') || 'nothing'}`;
  if (world !== undefined) {
    const name = WORLDS[world];
    if (!exports.includes(name) && !exports.includes('default')) {
      const define = name === 'processor' ? 'defineProcessor((record, emit) => { ... })' : 'defineAggregator({ initial, add })';
      throw new BuildError(`${entry} exports neither \`${name}\` nor a default export, which the world ${world} needs (${found}).\nAdd: export const ${name} = ${define};`);
    }
    return world;
  }
  const kinds = Object.entries(WORLDS).filter(([, name]) => exports.includes(name));
  if (kinds.length > 1) {
    throw new BuildError(
      `${entry} exports both \`processor\` and \`aggregator\` (${found}): a plugin is one or the other.\n` +
        'Export only one of them (a pipeline step uses a processor with `plugin = ...` and an aggregator with `aggregate = ...`).',
    );
  }
  if (kinds.length === 1) return kinds[0][0];
  if (exports.includes('default')) return 'record-processor';
  throw new BuildError(
    `${entry} exports neither \`processor\` nor \`aggregator\` (${found}).\n` +
      'Add one of: export const processor = defineProcessor((record, emit) => { ... });\n' +
      '            export const aggregator = defineAggregator({ initial(key) { ... }, add(aggregate, record) { ... } });',
  );
}

/** The module that binds `world`'s WIT imports and exports its interface from the plugin's `entry`. */
function glue(world, entry) {
  const plugin = `import * as plugin from ${JSON.stringify(entry)};`;
  if (world === 'record-aggregator') {
    return `
import { log } from 'sluice:plugin/log@0.1.0';
import { __sluice } from '@sluice/sdk';
${plugin}
__sluice.setHost(__sluice.logOnlyHost(log));
__sluice.routeConsole();
export const aggregator = __sluice.aggregatorOf(plugin);
`;
  }
  return `
import { log } from 'sluice:plugin/log@0.1.0';
import { get, put, delete as del, range } from 'sluice:plugin/state@0.1.0';
import { __sluice } from '@sluice/sdk';
${plugin}
__sluice.setHost({ log, state: { get, put, delete: del, range } });
__sluice.routeConsole();
export const processor = __sluice.processorOf(plugin);
`;
}

/** Bundles the plugin's entry behind the world's glue; returns the bundle and the world. */
async function bundle(esbuild, entry, world, workDir) {
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['browser', 'module', 'main'],
    conditions: ['sluice', 'worker', 'browser'],
    external: ['sluice:*'],
    alias: { '@sluice/sdk': SDK_DIR },
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    charset: 'utf8',
  };
  // 1. The plugin alone: does it compile, and what does it export?
  const alone = await esbuild.build({ ...common, entryPoints: [entry], metafile: true, outdir: join(workDir, 'alone') });
  const exports = Object.values(alone.metafile.outputs).flatMap((o) => o.exports ?? []);
  const detected = detectWorld(entry, exports, world);
  // 2. Behind the entry that binds the WIT imports and exports the interface.
  const out = await esbuild.build({
    ...common,
    stdin: { contents: glue(detected, entry), resolveDir: dirname(entry), sourcefile: 'sluice-entry.js', loader: 'js' },
    outfile: join(workDir, 'bundle.js'),
    write: true,
  });
  if (out.warnings.length) console.error(formatMessages(out.warnings));
  return { bundled: join(workDir, 'bundle.js'), world: detected };
}

export async function build(opts) {
  for (const name of ['plugin', 'wit', 'out']) {
    if (!opts[name]) throw new BuildError(`--${name} is required\n${usage()}`);
  }
  const world = opts.world;
  if (world !== undefined && !(world in WORLDS)) {
    throw new BuildError(
      `the JavaScript SDK builds the worlds ${Object.keys(WORLDS).join(', ')}, not \`${world}\``,
    );
  }
  const t = resolve(opts.toolchain ?? defaultToolchain());
  checkToolchain(t);
  const pluginDir = resolve(opts.plugin);
  if (!existsSync(pluginDir) || !statSync(pluginDir).isDirectory()) {
    throw new BuildError(`plugin directory ${pluginDir} does not exist`);
  }
  const wit = resolve(opts.wit);
  if (!existsSync(wit)) throw new BuildError(`WIT path ${wit} does not exist`);
  const out = resolve(opts.out);
  const entry = findEntry(pluginDir);

  const esbuild = await importFrom(t, 'esbuild', 'lib/main.js');
  const { componentize } = await importFrom(t, '@bytecodealliance/componentize-js', 'src/componentize.js');

  const workDir = realpathSync(mkdtempSync(join(tmpdir(), 'sluice-js-')));
  try {
    if (isTypeScript(entry)) {
      writeEditorTypes(pluginDir);
      typecheck(t, pluginDir, [entry], workDir);
    }
    let bundled;
    let built;
    try {
      ({ bundled, world: built } = await bundle(esbuild, entry, world, workDir));
    } catch (e) {
      if (e instanceof BuildError) throw e;
      if (e.errors?.length) throw new BuildError(`bundling ${relative(process.cwd(), entry) || entry} failed:\n${formatMessages(e.errors)}`);
      throw e;
    }
    let component;
    // componentize-js maps the working directory into the snapshotting
    // process when it holds the source (and mangles the path when it is
    // `/`): work from the bundle's own directory, so that only it is seen
    // and stack traces name `bundle.js`.
    const cwd = process.cwd();
    process.chdir(workDir);
    try {
      ({ component } = await componentize({
        sourcePath: bundled,
        witPath: wit,
        worldName: built,
        disableFeatures: WASI_FEATURES,
      }));
    } catch (e) {
      throw new BuildError(
        `componentize-js failed: ${e.message}\n` +
          '(the plugin\'s top-level code runs at build time, without the host: call log and state only from init and process;\n' +
          ' line numbers are in the bundle: --keep-bundle keeps it as <out>.bundle.js)',
      );
    } finally {
      process.chdir(cwd);
    }
    const tmp = `${out}.tmp-${process.pid}`;
    writeFileSync(tmp, component);
    renameSync(tmp, out);
    if (opts['keep-bundle']) writeFileSync(`${out}.bundle.js`, readFileSync(bundled));
    return { out, entry, world: built, size: component.length };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
    if (opts.help) {
      console.log(usage());
      return 0;
    }
    if (opts['install-command']) {
      console.log(installCommand(resolve(opts.toolchain ?? defaultToolchain())));
      return 0;
    }
    const started = Date.now();
    const { out, entry, world, size } = await build(opts);
    console.error(
      `built ${out} (${world}) from ${entry} (${(size / 1048576).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    return 0;
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(`error: ${e.message}`);
    } else {
      console.error(`error: ${e?.stack ?? e}`);
    }
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
