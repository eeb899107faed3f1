// build.mjs and test.mjs with the toolchain, short of componentize-js (so
// each takes a second or two): the templates pass their own tests and
// type-check out of the box, a type error fails the build with tsc's
// file(line,col), the world is read off the exports, a failing test fails
// test.mjs. Needs the toolchain (./scripts/setup.sh), from
// $SLUICE_TOOLCHAINS/js (default ~/.cache/sluice/toolchains/js); skipped
// without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { TOOLCHAIN } from '../build.mjs';
import { findTests } from '../test.mjs';

const SDK = join(dirname(fileURLToPath(import.meta.url)), '..');
const WIT = join(SDK, '..', '..', 'wit');
const T = join(process.env.SLUICE_TOOLCHAINS || join(homedir(), '.cache', 'sluice', 'toolchains'), 'js');
const missing = TOOLCHAIN.filter(([pkg]) => !existsSync(join(T, 'node_modules', pkg, 'package.json'))).map(([pkg]) => pkg);
const skip = missing.length > 0 && `the toolchain in ${T} lacks ${missing.join(', ')} (./scripts/setup.sh installs it)`;

/** A copy of `guest-sdk/js/template/<template>` named `demo`, as `sluice plugin new` writes it. */
function fromTemplate(root, template) {
  const dir = join(root, template, 'demo');
  cpSync(join(SDK, 'template', template), dir, { recursive: true });
  const fill = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) fill(path);
      else writeFileSync(path, readFileSync(path, 'utf8').replaceAll('{{name}}', 'demo'));
    }
  };
  fill(dir);
  return dir;
}

function plugin(root, name, files) {
  const dir = join(root, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const node = (args, cwd) => spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
const runTests = (dir) => node([join(SDK, 'test.mjs'), '--plugin', dir, '--toolchain', T]);
const build = (dir, ...more) =>
  node([join(SDK, 'build.mjs'), '--plugin', dir, '--wit', WIT, '--toolchain', T, '--out', join(dir, 'out.wasm'), ...more]);
const tsc = (dir) => node([join(T, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir);

test('every template passes its tests; the TypeScript ones type-check as an editor sees them', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-js-templates-'));
  try {
    for (const template of ['js', 'ts', 'js-aggregator', 'ts-aggregator']) {
      const dir = fromTemplate(root, template);
      const r = runTests(dir);
      assert.equal(r.status, 0, `${template}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^# pass 2$/m, template);
      assert.match(r.stdout, /^# fail 0$/m, template);
      if (template.startsWith('ts')) {
        // test.mjs wrote the SDK's types where the tsconfig points.
        assert.ok(existsSync(join(dir, '.sluice', 'sdk', 'index.d.ts')), template);
        assert.equal(readFileSync(join(dir, '.sluice', '.gitignore'), 'utf8').split('\n').at(-2), '*');
        const checked = tsc(dir);
        assert.equal(checked.status, 0, `${template}: tsc -p .:\n${checked.stdout}${checked.stderr}`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a type error fails the build (and the tests) with tsc naming the file and line', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-js-types-'));
  try {
    for (const template of ['ts', 'ts-aggregator']) {
      const dir = fromTemplate(root, template);
      const source = join(dir, 'src', 'index.ts');
      const lines = readFileSync(source, 'utf8').split('\n');
      const at = lines.findIndex((l) => l.startsWith('export const'));
      lines.splice(at, 0, "const broken: number = 'text';");
      writeFileSync(source, lines.join('\n'));
      const want = new RegExp(`^src/index\\.ts\\(${at + 1},7\\): error TS2322: Type 'string' is not assignable to type 'number'\\.$`, 'm');
      const built = build(dir);
      assert.equal(built.status, 1, template);
      assert.match(built.stderr, /^error: type errors in src\/index\.ts \(tsc, .*tsconfig\.json\):$/m);
      assert.match(built.stderr, want);
      assert.equal(existsSync(join(dir, 'out.wasm')), false);
      const tested = runTests(dir);
      assert.equal(tested.status, 1, template);
      assert.match(tested.stderr, want);
    }
    // Without a tsconfig.json: strict defaults (an implicit any is an error).
    const bare = plugin(root, 'bare', {
      'src/index.ts': "import { defineProcessor } from '@sluice/sdk';\nexport const processor = defineProcessor((record) => record);\nexport function f(x) { return x; }\n",
    });
    const r = build(bare);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no tsconfig\.json: strict defaults/);
    assert.match(r.stderr, /^src\/index\.ts\(3,19\): error TS7006: Parameter 'x' implicitly has an 'any' type\.$/m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a plugin\'s own tsconfig paths are kept beside the SDK\'s', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-js-paths-'));
  try {
    const dir = plugin(root, 'paths', {
      'tsconfig.json': '{ "compilerOptions": { "strict": true, "noEmit": true, "module": "esnext", "moduleResolution": "bundler", "types": [], "paths": { "@lib/*": ["./lib/*"] } } }',
      'lib/word.ts': 'export const word: string = "hi";\n',
      'src/index.ts': "import { defineAggregator } from '@sluice/sdk';\nimport { word } from '@lib/word';\nconst n: number = word;\nexport const aggregator = defineAggregator({ initial: () => n, add: (m: number) => m + 1 });\n",
    });
    const r = build(dir);
    assert.equal(r.status, 1);
    // The alias resolved (no TS2307), and its type is checked.
    assert.doesNotMatch(r.stderr, /TS2307/);
    assert.match(r.stderr, /^src\/index\.ts\(3,7\): error TS2322: Type 'string' is not assignable to type 'number'\.$/m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the world is read off the exports: both or neither is refused, naming them', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-js-world-'));
  try {
    const both = plugin(root, 'both', {
      'index.js': "import { defineAggregator, defineProcessor } from '@sluice/sdk';\nexport const processor = defineProcessor((r) => r);\nexport const aggregator = defineAggregator({ initial: () => 0, add: (n) => n + 1 });\n",
    });
    let r = build(both);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /exports both `processor` and `aggregator` \(it exports: aggregator, processor\): a plugin is one or the other/);
    const neither = plugin(root, 'neither', { 'index.js': 'export const helper = 1;\nexport function other() {}\n' });
    r = build(neither);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /exports neither `processor` nor `aggregator` \(it exports: helper, other\)/);
    assert.match(r.stderr, /export const aggregator = defineAggregator/);
    // An explicit --world needs its export.
    const agg = plugin(root, 'agg', { 'index.js': "import { defineAggregator } from '@sluice/sdk';\nexport const aggregator = defineAggregator({ initial: () => 0, add: (n) => n + 1 });\n" });
    r = build(agg, '--world', 'record-processor');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /exports neither `processor` nor a default export, which the world record-processor needs \(it exports: aggregator\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('test.mjs: a failing test fails it; no tests is an error; which files are tests', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-js-tests-'));
  try {
    const failing = plugin(root, 'failing', {
      'src/index.js': "import { defineProcessor } from '@sluice/sdk';\nexport const processor = defineProcessor((r) => r);\n",
      'test/a.test.js': "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { run } from '@sluice/sdk/testing';\nimport { processor } from '../src/index.js';\ntest('echo', () => { assert.equal(run(processor, { key: 'k', value: 'v' })[0].valueText(), 'w'); });\n",
    });
    const r = runTests(failing);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^not ok 1 - echo$/m);
    assert.match(r.stdout, /failing\/test\/a\.test\.js:5/, 'source-mapped to the test file');

    const none = plugin(root, 'none', { 'index.js': "export const processor = (r) => r;\n" });
    const n = runTests(none);
    assert.equal(n.status, 1);
    assert.match(n.stderr, /^error: no tests in .*none: a test is a \.js\/\.ts file under test\//m);

    const layout = plugin(root, 'layout', {
      'index.js': '',
      'test/helpers/util.js': '',
      'tests/b.ts': '',
      'src/c.test.ts': '',
      'src/d_test.mjs': '',
      'src/e.js': '',
      'test/types.d.ts': '',
      'node_modules/x/test/f.js': '',
      '.sluice/test/g.js': '',
    });
    assert.deepEqual(
      findTests(layout).map((f) => f.slice(layout.length + 1)),
      ['src/c.test.ts', 'src/d_test.mjs', 'test/helpers/util.js', 'tests/b.ts'],
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
