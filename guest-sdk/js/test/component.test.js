// End to end: build TypeScript plugins (a processor, an aggregator) with
// build.mjs into components, check their imports and exports, transpile
// them with jco and call their exports with frames, the WIT imports
// stubbed. Slow (a build is ~10 s of CPU) and needs the toolchain, so it
// runs only with SLUICE_JS_E2E=1:
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
      [join(SDK, 'build.mjs'), '--plugin', join(work, 'plugin'), '--wit', join(work, 'wit'), '--toolchain', T, '--out', out],
      { encoding: 'utf8' },
    );
    assert.equal(built.status, 0, built.stderr);
    assert.match(built.stderr, /\(record-processor\)/, 'the world read off the exports');

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

const AGGREGATOR = `
import { defineAggregator, Reject, log, store } from '@sluice/sdk';

interface Sum { n: number; total: number; keys: string[] }

export const aggregator = defineAggregator({
  init(config) {
    if (config.get('fail')) throw new Reject('bad-config', 'told to fail');
    log.info('init');
  },
  initial: (key): Sum => ({ n: 0, total: 0, keys: [key === null ? 'null' : new TextDecoder().decode(key)] }),
  add(sum, record) {
    const v = record.valueText();
    if (v === 'bug') return (undefined as any).x;
    if (v === 'state') store('s').get('k');
    if (v === 'console') console.log('via console');
    const amount = Number(v);
    if (Number.isNaN(amount)) throw new Reject('bad-amount', v);
    return { ...sum, n: sum.n + 1, total: sum.total + amount };
  },
  merge: (key, a, b) => ({ n: a.n + b.n, total: a.total + b.total, keys: [...a.keys, ...b.keys] }),
});
`;

test('a TypeScript aggregator built into a component: log-only imports, add, merge, rejections, traps', { skip: !enabled && 'set SLUICE_JS_E2E=1 (needs the toolchain; ~10 s build)' }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-js-e2e-'));
  try {
    mkdirSync(join(work, 'plugin', 'src'), { recursive: true });
    writeFileSync(join(work, 'plugin', 'src', 'index.ts'), AGGREGATOR);
    mkdirSync(join(work, 'wit'));
    cpSync(WIT, join(work, 'wit', 'plugin.wit'));
    const out = join(work, 'agg.wasm');
    const built = spawnSync(
      process.execPath,
      [join(SDK, 'build.mjs'), '--plugin', join(work, 'plugin'), '--wit', join(work, 'wit'), '--toolchain', T, '--out', out],
      { encoding: 'utf8' },
    );
    assert.equal(built.status, 0, built.stderr);
    assert.match(built.stderr, /\(record-aggregator\)/);

    const jco = await import(pathToFileURL(join(T, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'api.js')).href);
    const component = readFileSync(out);
    const wit = await jco.componentWit(component);
    const imports = [...wit.matchAll(/^\s*import (\S+);/gm)].map((m) => m[1]).sort();
    assert.deepEqual(imports, ['sluice:plugin/log@0.1.0', 'sluice:plugin/types@0.1.0'], 'no state in the aggregator world');
    assert.match(wit, /^\s*export sluice:plugin\/aggregator@0\.1\.0;/m);

    const { files } = await jco.transpile(component, { name: 'agg', instantiation: 'async' });
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(work, 'tr', name)), { recursive: true });
      writeFileSync(join(work, 'tr', name), bytes);
    }
    const { instantiate } = await import(pathToFileURL(join(work, 'tr', 'agg.js')).href);
    const logs = [];
    const host = { 'sluice:plugin/log': { log: (level, message) => logs.push([level, message]) }, 'sluice:plugin/types': {} };
    const fresh = async () => (await instantiate((p) => WebAssembly.compile(readFileSync(join(work, 'tr', p))), host)).aggregator;
    const value = (status) => JSON.parse(t(status.ok[0].value));

    let a = await fresh();
    a.init([]);
    assert.deepEqual(logs.shift(), ['info', 'init']);
    const failing = await fresh();
    assert.throws(() => failing.init([['fail', '1']]), (e) => e.payload?.code === 'bad-config' && e.payload.message === 'told to fail');

    // One call: stored aggregates, threading, rejections, a null key.
    const stored = encodeInput([{ key: b('a'), value: b('{"n":2,"total":10,"keys":["a"]}'), timestamp: null, headers: [] }, rec(null, 'b')]);
    const statuses = decodeOutput(
      a.add(stored, encodeInput([rec('1', 'a'), rec('x', 'a'), rec('2', 'b'), rec('state', 'a'), rec('3', 'a'), rec('console', 'b'), { ...rec('4'), key: null }])),
    );
    assert.equal(statuses.length, 7);
    assert.deepEqual(value(statuses[0]), { n: 3, total: 11, keys: ['a'] });
    assert.deepEqual(statuses[1], { rejected: { code: 'bad-amount', message: 'x' } });
    assert.deepEqual(value(statuses[2]), { n: 1, total: 2, keys: ['b'] }, 'a null stored aggregate starts from initial');
    assert.equal(statuses[3].rejected.code, 'no-state');
    assert.deepEqual(value(statuses[4]), { n: 4, total: 14, keys: ['a'] });
    assert.equal(statuses[5].rejected.code, 'bad-amount');
    assert.deepEqual(logs.shift(), ['info', 'via console']);
    assert.deepEqual(value(statuses[6]), { n: 1, total: 4, keys: ['null'] });
    for (const [i, key] of [[0, 'a'], [2, 'b'], [6, null]]) {
      assert.equal(statuses[i].ok.length, 1);
      assert.equal(t(statuses[i].ok[0].key), key);
      assert.equal(statuses[i].ok[0].timestamp, null);
      assert.deepEqual(statuses[i].ok[0].headers, []);
    }
    // A stored aggregate that does not decode rejects its key's records.
    const broken = decodeOutput(a.add(encodeInput([{ ...rec('{'), key: b('k') }]), encodeInput([rec('1')])));
    assert.equal(broken[0].rejected.code, 'bad-aggregate');

    // merge, with and without a key; a malformed aggregate or frame is `err`.
    const merged = JSON.parse(t(a.merge(b('k'), b('{"n":1,"total":1,"keys":["x"]}'), b('{"n":2,"total":5,"keys":["y"]}'))));
    assert.deepEqual(merged, { n: 3, total: 6, keys: ['x', 'y'] });
    assert.equal(JSON.parse(t(a.merge(undefined, b('{"n":0,"total":0,"keys":[]}'), b('{"n":0,"total":0,"keys":[]}')))).n, 0);
    assert.throws(() => a.merge(undefined, b('{'), b('{}')), (e) => e.payload?.code === 'bad-aggregate');
    assert.throws(() => a.add(encodeInput([]), new Uint8Array([1, 1, 0, 0, 0])), (e) => e.payload?.code === 'bad-frame');

    // A bug traps.
    a = await fresh();
    assert.throws(() => a.add(encodeInput([]), encodeInput([rec('1'), rec('bug')])), (e) => e instanceof WebAssembly.RuntimeError && !('payload' in e));
    const [level, message] = logs.pop();
    assert.equal(level, 'error');
    assert.match(message, /^add threw \(a trap\): TypeError/);
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
  assert.match(printed.stdout, /^npm install --prefix .* esbuild@0\.28\.2 typescript@7\.0\.2\n$/);
});

test('build.mjs refuses unknown options and worlds clearly', () => {
  const r = spawnSync(process.execPath, [join(SDK, 'build.mjs'), '--plugn', 'x'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown option `--plugn`/);
  const w = spawnSync(process.execPath, [join(SDK, 'build.mjs'), '--plugin', SDK, '--wit', SDK, '--out', 'x', '--world', 'timestamp-extractor'], { encoding: 'utf8' });
  assert.equal(w.status, 1);
  assert.match(w.stderr, /builds the worlds record-processor, record-aggregator, not `timestamp-extractor`/);
});
