#!/usr/bin/env node
// Builds a JavaScript/TypeScript Sluice plugin into a WebAssembly component.
//
//   node build.mjs --plugin <dir> --wit <wit-dir> --world record-processor \
//                  --toolchain <T> --out <out.wasm>
//   node build.mjs --install-command [--toolchain <T>]   # prints how to install T
//
// 1. Finds the plugin's entry: package.json "main" if set, else the first of
//    src/index.ts, src/index.js, index.ts, index.js (also .mts/.mjs).
// 2. Bundles it with esbuild into one ES module, `@sluice/sdk` resolving to
//    the SDK next to this file, behind an entry that binds the WIT imports
//    (sluice:plugin/log, sluice:plugin/state) and exports `processor`.
// 3. Componentizes it with componentize-js, every WASI feature disabled: the
//    component imports only sluice:plugin/{log,state,types}@0.1.0.
//
// The toolchain (componentize-js, esbuild) lives in <T>/node_modules, at the
// pinned versions below; nothing is needed next to the SDK or the plugin.

import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
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
 * transpiles components for the end-to-end test.
 */
export const TOOLCHAIN = [
  ['@bytecodealliance/componentize-js', '0.23.0'],
  ['@bytecodealliance/jco', '1.35.0'],
  ['@bytecodealliance/preview2-shim', '0.25.0'],
  ['esbuild', '0.28.2'],
];

const WORLDS = { 'record-processor': 'processor' };
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

class BuildError extends Error {}

function usage() {
  return `usage: node build.mjs --plugin <dir> --wit <wit-dir> --world record-processor --toolchain <dir> --out <out.wasm>
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
function checkToolchain(t) {
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

async function importFrom(t, pkg, file) {
  return import(pathToFileURL(join(t, 'node_modules', pkg, file)).href);
}

function findEntry(pluginDir) {
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

function formatMessages(messages) {
  return messages
    .map((m) => {
      const loc = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ` : '';
      const line = m.location?.lineText ? `\n    ${m.location.lineText}` : '';
      return `${loc}${m.text}${line}`;
    })
    .join('\n');
}

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
  // 1. The plugin alone: does it compile, and does it export a processor?
  const alone = await esbuild.build({ ...common, entryPoints: [entry], metafile: true, outdir: workDir });
  const exports = Object.values(alone.metafile.outputs).flatMap((o) => o.exports ?? []);
  const exportName = WORLDS[world];
  if (!exports.includes(exportName) && !exports.includes('default')) {
    throw new BuildError(
      `${entry} exports neither \`${exportName}\` nor a default export (it exports: ${exports.join(', ') || 'nothing'}).\n` +
        `Add: export const ${exportName} = defineProcessor((record, emit) => { ... });`,
    );
  }
  // 2. Behind the entry that binds the WIT imports and exports the interface.
  const glue = `
import { log } from 'sluice:plugin/log@0.1.0';
import { get, put, delete as del, range } from 'sluice:plugin/state@0.1.0';
import { __sluice } from '@sluice/sdk';
import * as plugin from ${JSON.stringify(entry)};
__sluice.setHost({ log, state: { get, put, delete: del, range } });
__sluice.routeConsole();
export const ${exportName} = __sluice.processorOf(plugin);
`;
  const out = await esbuild.build({
    ...common,
    stdin: { contents: glue, resolveDir: dirname(entry), sourcefile: 'sluice-entry.js', loader: 'js' },
    outfile: join(workDir, 'bundle.js'),
    write: true,
  });
  if (out.warnings.length) console.error(formatMessages(out.warnings));
  return join(workDir, 'bundle.js');
}

export async function build(opts) {
  for (const name of ['plugin', 'wit', 'out']) {
    if (!opts[name]) throw new BuildError(`--${name} is required\n${usage()}`);
  }
  const world = opts.world ?? 'record-processor';
  if (!(world in WORLDS)) {
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
    let bundled;
    try {
      bundled = await bundle(esbuild, entry, world, workDir);
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
        worldName: world,
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
    return { out, entry, size: component.length };
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
    const { out, entry, size } = await build(opts);
    console.error(
      `built ${out} from ${entry} (${(size / 1048576).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
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
