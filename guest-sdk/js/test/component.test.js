// End to end: build a TypeScript plugin with build.mjs into a component,
// check its imports and exports, transpile it with jco and call its
// `processor` export with frames, the WIT imports stubbed. Slow (a build is
// ~10 s of CPU) and needs the toolchain, so it runs only with
// SLUICE_JS_E2E=1:
//
//   SLUICE_JS_E2E=1 node --test guest-sdk/js/test/
//
// The toolchain is taken from $SLUICE_TOOLCHAINS/js (default
// ~/.cache/sluice/toolchains/js).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { decodeOutput, encodeInput } from '../frame.js';

const SDK = join(dirname(fileURLToPath(import.meta.url)), '..');
const WIT = join(SDK, '..', '..', 'wit', 'plugin.wit');
const T = join(process.env.SLUICE_TOOLCHAINS || join(homedir(), '.cache', 'sluice', 'toolchains'), 'js');
const enabled = process.env.SLUICE_JS_E2E === '1';

const PROBE = `
import { defineProcessor, Reject, log, store, type Record } from '@sluice/sdk';

let greeting: string = 'none';

export const processor = defineProcessor({
  init(config) {
    if (config.get('fail')) throw new Reject('bad-config', 'told to fail');
    greeting = config.get('greeting') ?? 'none';
    log.info('init ' + greeting);
  },
  process(record: Record, emit) {
    const v = record.valueText();
    switch (v) {
      case 'bug': return (undefined as any).x;
      case 'throw-object': throw { code: 'looks-like', message: 'an error record' };
      case 'count': {
        const counts = store('counts');
        const n = Number(counts.getText(record.key ?? '') ?? '0') + 1;
        counts.put(record.key ?? '', String(n));
        return record.withValue(String(n));
      }
      case 'other-store': store('undeclared').get('k'); return;
      case 'console': console.log('via console', { a: 1 }); return record;
      case '': throw new Reject('empty', 'nothing to split');
    }
    for (const w of v.split(' ')) emit(record.withValue(w).withHeader('greeting', greeting));
  },
});
`;

const b = (s) => new TextEncoder().encode(s);
const t = (u8) => (u8 === null ? null : new TextDecoder().decode(u8));
const rec = (value, key = 'k') => ({ key: b(key), value: value === null ? null : b(value), timestamp: 7, headers: [] });

test('a TypeScript plugin built into a component: imports, frames, rejections, traps', { skip: !enabled && 'set SLUICE_JS_E2E=1 (needs the toolchain; ~10 s build)' }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-js-e2e-'));
  try {
    mkdirSync(join(work, 'plugin', 'src'), { recursive: true });
    writeFileSync(join(work, 'plugin', 'src', 'index.ts'), PROBE);
    mkdirSync(join(work, 'wit'));
    cpSync(WIT, join(work, 'wit', 'plugin.wit'));
    const out = join(work, 'probe.wasm');
    const built = spawnSync(
      process.execPath,
      [join(SDK, 'build.mjs'), '--plugin', join(work, 'plugin'), '--wit', join(work, 'wit'), '--world', 'record-processor', '--toolchain', T, '--out', out],
      { encoding: 'utf8' },
    );
    assert.equal(built.status, 0, built.stderr);

    const jco = await import(pathToFileURL(join(T, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'api.js')).href);
    const component = readFileSync(out);
    const wit = await jco.componentWit(component);
    const imports = [...wit.matchAll(/^\s*import (\S+);/gm)].map((m) => m[1]).sort();
    assert.deepEqual(imports, ['sluice:plugin/log@0.1.0', 'sluice:plugin/state@0.1.0', 'sluice:plugin/types@0.1.0']);
    assert.match(wit, /^\s*export sluice:plugin\/processor@0\.1\.0;/m);

    const { files } = await jco.transpile(component, { name: 'probe', instantiation: 'async' });
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(work, 'tr', name)), { recursive: true });
      writeFileSync(join(work, 'tr', name), bytes);
    }
    const { instantiate } = await import(pathToFileURL(join(work, 'tr', 'probe.js')).href);
    const logs = [];
    const stores = new Map();
    const host = {
      'sluice:plugin/log': { log: (level, message) => logs.push([level, message]) },
      'sluice:plugin/types': {},
      'sluice:plugin/state': {
        get(s, k) {
          // jco reads an `err` from a thrown value that is not an Error.
          if (s !== 'counts') throw { code: 'unknown-store', message: `store \`${s}\` is not declared` };
          return stores.get(t(k));
        },
        put: (s, k, v) => void stores.set(t(k), v),
        delete: (s, k) => void stores.delete(t(k)),
        range: () => [],
      },
    };
    const fresh = async () =>
      (await instantiate((p) => WebAssembly.compile(readFileSync(join(work, 'tr', p))), host)).processor;

    // init: ok, or err(bad-config) from a Reject.
    let p = await fresh();
    p.init([['greeting', 'hi']]);
    assert.deepEqual(logs.shift(), ['info', 'init hi']);
    const failing = await fresh();
    assert.throws(() => failing.init([['fail', '1']]), (e) => e.payload?.code === 'bad-config' && e.payload.message === 'told to fail');

    // One call: flat-map, rejections (thrown, null value, state error), state.
    const statuses = decodeOutput(
      p.process(encodeInput([rec('a b'), rec(''), rec(null), rec('count'), rec('count'), rec('other-store'), rec('console')])),
    );
    assert.deepEqual(statuses[0].ok.map((r) => [t(r.value), t(r.headers[0][1]), r.timestamp]), [['a', 'hi', 7], ['b', 'hi', 7]]);
    assert.deepEqual(statuses[1], { rejected: { code: 'empty', message: 'nothing to split' } });
    assert.equal(statuses[2].rejected.code, 'null-value');
    assert.equal(t(statuses[3].ok[0].value), '1');
    assert.equal(t(statuses[4].ok[0].value), '2');
    assert.equal(statuses[5].rejected.code, 'unknown-store');
    assert.equal(statuses[6].ok.length, 1);
    assert.deepEqual(logs.shift(), ['info', 'via console {"a":1}']);

    // A malformed frame: err(bad-frame), the instance stays usable.
    assert.throws(() => p.process(new Uint8Array([1, 1, 0, 0, 0])), (e) => e.payload?.code === 'bad-frame');
    assert.throws(() => p.process(new Uint8Array([1, 0, 0, 0, 0, 0])), (e) => e.payload?.code === 'bad-frame' && /trailing/.test(e.payload.message));
    assert.equal(decodeOutput(p.process(encodeInput([rec('c')])))[0].ok.length, 1);

    // A bug traps (not `err`): a TypeError, and a thrown plain object that
    // componentize-js would otherwise have returned as `err`.
    for (const value of ['bug', 'throw-object']) {
      p = await fresh();
      assert.throws(() => p.process(encodeInput([rec('x'), rec(value)])), (e) => e instanceof WebAssembly.RuntimeError && /unreachable/.test(e.message) && !('payload' in e));
      const [level, message] = logs.pop();
      assert.equal(level, 'error');
      assert.match(message, value === 'bug' ? /^process threw \(a trap\): TypeError/ : /looks-like/);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('build.mjs names the install command when the toolchain is missing', () => {
  const missing = join(tmpdir(), `sluice-no-toolchain-${process.pid}`);
  const r = spawnSync(
    process.execPath,
    [join(SDK, 'build.mjs'), '--plugin', SDK, '--wit', SDK, '--world', 'record-processor', '--toolchain', missing, '--out', join(missing, 'x.wasm')],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /componentize-js is not installed/);
  assert.ok(r.stderr.includes(`npm install --prefix ${missing} --no-audit --no-fund --save-exact @bytecodealliance/componentize-js@0.23.0`), r.stderr);
  assert.equal(existsSync(missing), false, 'nothing is created');
  const printed = spawnSync(process.execPath, [join(SDK, 'build.mjs'), '--install-command', '--toolchain', missing], { encoding: 'utf8' });
  assert.equal(printed.status, 0);
  assert.match(printed.stdout, /^npm install --prefix .* esbuild@0\.28\.2\n$/);
});

test('build.mjs refuses unknown options and worlds clearly', () => {
  const r = spawnSync(process.execPath, [join(SDK, 'build.mjs'), '--plugn', 'x'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown option `--plugn`/);
  const w = spawnSync(process.execPath, [join(SDK, 'build.mjs'), '--plugin', SDK, '--wit', SDK, '--out', 'x', '--world', 'record-aggregator'], { encoding: 'utf8' });
  assert.equal(w.status, 1);
  assert.match(w.stderr, /not `record-aggregator`/);
});
