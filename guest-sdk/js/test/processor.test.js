import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Config, Record, Reject, StateError, defineProcessor, log, setHost, store } from '../index.js';
import { decodeOutput, encodeInput } from '../frame.js';
import { run, runBatch, useMemoryHost } from '../testing.js';

const b = (s) => new TextEncoder().encode(s);
const text = (u8) => (u8 === null ? null : new TextDecoder().decode(u8));

/** Splits the value into words; rejects an empty value. */
const splitWords = defineProcessor((record, emit) => {
  const value = record.valueText();
  if (value === '') throw new Reject('empty', 'nothing to split');
  for (const w of value.split(' ')) emit(record.withValue(w));
});

test('flat-map, reject and pass-through keep one status per record, in order', () => {
  const out = runBatch(splitWords, [
    new Record({ key: 'a', value: 'x y', timestamp: 5 }),
    new Record({ key: 'b', value: '' }),
    new Record({ key: 'c', value: 'z', headers: [['h', 'v']] }),
    new Record({ key: 'd', value: null }),
    new Record({ key: 'e', value: new Uint8Array([0xff]) }),
  ]);
  assert.equal(out.length, 5);
  assert.deepEqual(out[0].map((r) => text(r.value)), ['x', 'y']);
  assert.equal(out[0][1].timestamp, 5, 'the input timestamp is kept');
  assert.equal(text(out[0][1].key), 'a');
  assert.ok(out[1] instanceof Reject);
  assert.deepEqual([out[1].code, out[1].message], ['empty', 'nothing to split']);
  assert.equal(out[2][0].headerText('h'), 'v');
  assert.equal(out[3].code, 'null-value');
  assert.equal(out[4].code, 'bad-utf8');
});

test('the raw export: an output frame with a rejected status, through encode/decode', () => {
  const frame = encodeInput([
    { key: b('k'), value: b('a b'), timestamp: 1, headers: [] },
    { key: b('k'), value: b(''), timestamp: 2, headers: [] },
  ]);
  const statuses = decodeOutput(splitWords.process(frame));
  assert.equal(statuses[0].ok.length, 2);
  assert.deepEqual(statuses[1], { rejected: { code: 'empty', message: 'nothing to split' } });
  // An empty batch gives an empty output frame.
  assert.deepEqual([...splitWords.process(encodeInput([]))], [1, 0, 0, 0, 0]);
});

test('records emitted before a rejection are dropped with it', () => {
  const p = defineProcessor((record, emit) => {
    emit(record);
    emit(record);
    return new Reject('late', 'changed my mind'); // a returned Reject rejects too
  });
  const [r] = runBatch(p, [new Record({ key: 'k', value: 'v' })]);
  assert.equal(r.code, 'late');
});

test('returning a record, an array, plain objects or nothing', () => {
  const p = defineProcessor((record) => {
    const n = Number(record.valueText());
    if (n === 0) return undefined;
    if (n === 1) return record;
    return [record.withValue('a'), { key: 'k2', value: { n } }];
  });
  const [zero, one, two] = runBatch(p, ['0', '1', '2'].map((value) => new Record({ key: 'k', value })));
  assert.deepEqual(zero, []);
  assert.equal(text(one[0].value), '1');
  assert.equal(text(two[0].value), 'a');
  assert.equal(text(two[1].key), 'k2');
  assert.deepEqual(two[1].valueJson(), { n: 2 });
  assert.equal(two[1].timestamp, null, 'a new record keeps the input timestamp (absent)');
});

test('a malformed input frame is a call error (`bad-frame`), not a rejection or a trap', () => {
  for (const bad of [new Uint8Array([]), new Uint8Array([9, 0, 0, 0, 0]), new Uint8Array([1, 1, 0, 0, 0]), new Uint8Array([1, 0, 0, 0, 0, 42])]) {
    assert.throws(
      () => splitWords.process(bad),
      (e) => e.payload?.code === 'bad-frame' && typeof e.payload.message === 'string',
    );
  }
});

test('an exception that is not a Reject traps: rethrown as an Error without `payload`, and logged', () => {
  const host = useMemoryHost();
  const cases = [
    () => null.boom,
    () => {
      throw { code: 'looks-like', message: 'an error record' }; // would be `err` if it escaped as is
    },
    () => {
      throw 'a string';
    },
    () => {
      const e = new Error('carries a payload');
      e.payload = { code: 'x', message: 'y' }; // would be `err` too
      throw e;
    },
    (r, emit) => emit(42), // not a record: a bug
    () => Promise.resolve([]), // async process
  ];
  for (const f of cases) {
    const p = defineProcessor(f);
    assert.throws(
      () => p.process(encodeInput([{ key: null, value: b('v'), timestamp: null, headers: [] }])),
      (e) => e instanceof Error && e.name === 'Trap' && !Object.hasOwn(e, 'payload'),
    );
  }
  assert.equal(host.logs.length, cases.length);
  assert.ok(host.logs.every((l) => l.level === 'error' && l.message.startsWith('process threw (a trap)')));
  assert.match(host.logs[0].message, /TypeError/);
  assert.match(host.logs[1].message, /looks-like/);
});

test('init gets the config; a Reject from init is a call error, another exception a trap', () => {
  const seen = [];
  const p = defineProcessor({
    init(config) {
      assert.ok(config instanceof Config);
      if (config.get('fail')) throw new Reject('bad-config', 'told to fail');
      if (config.get('bug')) return undefined.x;
      this.step = config.number('step', 1);
    },
    process(record) {
      seen.push(this.step);
      return record.withValue(String(this.step));
    },
  });
  const [[r]] = runBatch(p, [new Record({ key: 'k', value: '' })], { config: { step: 10 } });
  assert.equal(text(r.value), '10');
  assert.throws(() => p.init([['fail', 'yes']]), (e) => e.payload?.code === 'bad-config' && e.payload.message === 'told to fail');
  useMemoryHost();
  assert.throws(() => p.init([['bug', 'yes']]), (e) => e.name === 'Trap' && !Object.hasOwn(e, 'payload'));
  assert.throws(() => p.init([['step', 'ten']]), (e) => e.payload?.code === 'bad-config' && /`step`/.test(e.payload.message));
});

test('process before init runs init with an empty config', () => {
  let inits = 0;
  const p = defineProcessor({ init() { inits++; }, process: (r) => r });
  p.process(encodeInput([]));
  p.process(encodeInput([]));
  assert.equal(inits, 1);
});

test('config helpers: last value wins, numbers, booleans, required keys', () => {
  const c = new Config([['n', '5'], ['n', '6'], ['b', 'true'], ['x', 'five']]);
  assert.equal(c.get('n'), '6');
  assert.equal(c.number('n', 1), 6);
  assert.equal(c.number('absent', 7), 7);
  assert.equal(c.boolean('b', false), true);
  assert.throws(() => c.number('x'), { code: 'bad-config' });
  assert.throws(() => c.require('absent'), { code: 'bad-config' });
});

test('record helpers: text, JSON, headers, with… copies, timestamps', () => {
  const r = new Record({ key: 'k', value: '{"a":1}', timestamp: new Date(42), headers: { h: '1' } })
    .withHeader('h', 2)
    .withHeader('n', null);
  assert.equal(r.headerText('h'), '2');
  assert.equal(r.header('n'), null);
  assert.equal(r.header('missing'), undefined);
  assert.equal(r.timestamp, 42);
  assert.equal(r.keyText(), 'k');
  assert.deepEqual(r.valueJson(), { a: 1 });
  assert.equal(r.withoutHeader('h').header('h'), undefined);
  assert.equal(r.headerText('h'), '2', 'with… leaves the original as it was');
  assert.equal(text(r.withValue({ b: [1] }).value), '{"b":[1]}');
  assert.equal(text(r.withJson('s').value), '"s"');
  assert.equal(r.withValue(null).value, null);
  assert.equal(r.withTimestamp(null).timestamp, null);
  assert.throws(() => r.withValue(undefined), TypeError);
  assert.throws(() => r.withTimestamp(1.5), TypeError);
  assert.throws(() => new Record({ value: '{oops' }).valueJson(), { code: 'bad-json' });
  assert.throws(() => new Record({}).valueJson(), { code: 'bad-json' });
  assert.throws(() => new Record({}).valueText(), { code: 'null-value' });
  assert.equal(new Record({}).keyText(), null);
});

test('state through a substituted host: get/put/delete/range, errors as StateError rejections', () => {
  const calls = [];
  const fake = {
    log: (level, message) => calls.push(['log', level, message]),
    state: {
      get(s, k) {
        calls.push(['get', s, text(k)]);
        if (s !== 'seen') throw { payload: { code: 'unknown-store', message: `store \`${s}\` is not declared` } };
        return text(k) === 'hit' ? b('1') : undefined;
      },
      put: (s, k, v) => calls.push(['put', s, text(k), text(v)]),
      delete: (s, k) => calls.push(['delete', s, text(k)]),
      range(s, start, end, limit) {
        calls.push(['range', s, start && text(start), end && text(end), limit]);
        return [[b('a'), b('1')]];
      },
    },
  };
  const previous = setHost(fake);
  try {
    const seen = store('seen');
    assert.equal(text(seen.get('hit')), '1');
    assert.equal(seen.get('miss'), null);
    assert.equal(seen.getText('miss'), null);
    seen.put('k', { n: 1 });
    seen.delete(new Uint8Array([0x6b]));
    assert.deepEqual(seen.range({ start: 'a', limit: 5 }).map(([k, v]) => [text(k), text(v)]), [['a', '1']]);
    log.warn('careful');
    assert.deepEqual(calls.slice(3), [
      ['put', 'seen', 'k', '{"n":1}'],
      ['delete', 'seen', 'k'],
      ['range', 'seen', 'a', undefined, 5],
      ['log', 'warn', 'careful'],
    ]);
    assert.throws(
      () => store('other').get('k'),
      (e) => e instanceof StateError && e instanceof Reject && e.code === 'unknown-store',
    );
    // Uncaught in process, a state error rejects the record with the host's code.
    const p = defineProcessor((r) => {
      store('other').get(r.key);
    });
    const [out] = runBatch(p, [new Record({ key: 'k', value: 'v' })]);
    assert.equal(out.code, 'unknown-store');
  } finally {
    setHost(previous);
  }
});

test('testing.run: outputs, or the Reject thrown; the memory host keeps state per run', () => {
  useMemoryHost();
  const dedup = defineProcessor((record, emit) => {
    const seen = store('seen');
    if (record.key === null) throw new Reject('null-key', 'dedup needs a key');
    if (seen.get(record.key) === null) {
      seen.put(record.key, '');
      emit(record);
    }
  });
  assert.equal(run(dedup, new Record({ key: 'a', value: '1' })).length, 1);
  assert.equal(run(dedup, new Record({ key: 'a', value: '2' })).length, 0);
  assert.throws(() => run(dedup, new Record({ value: '3' })), { code: 'null-key' });
  const host = useMemoryHost();
  assert.equal(run(dedup, new Record({ key: 'a', value: '1' })).length, 1, 'a fresh host starts empty');
  assert.equal(host.stores.get('seen').size, 1);
  // range over the memory store: in key order, bounded, limited.
  const s = store('r');
  for (const k of ['c', 'a', 'b', 'd']) s.put(k, k.toUpperCase());
  assert.deepEqual(s.range({ start: 'b', end: 'd' }).map(([k]) => text(k)), ['b', 'c']);
  assert.deepEqual(s.range({ limit: 1 }).map(([k]) => text(k)), ['a']);
  s.delete('a');
  assert.equal(s.get('a'), null);
});

test('the build entry takes the module\'s `processor` or its default export, in any form', async () => {
  const { __sluice } = await import('../index.js');
  const fn = (r) => r.withValue('x');
  for (const mod of [{ processor: defineProcessor(fn) }, { default: fn }, { default: { process: fn } }]) {
    const p = __sluice.processorOf(mod);
    assert.equal(typeof p.init, 'function');
    const [[out]] = runBatch(p, [new Record({ key: 'k', value: 'v' })]);
    assert.equal(text(out.value), 'x');
  }
  assert.throws(() => __sluice.processorOf({ other: fn }), /neither `processor` nor a default export/);
  assert.throws(() => __sluice.processorOf({ processor: 42 }), TypeError);
});

test('console output goes to the host log once routed (as in a component)', async () => {
  const { __sluice } = await import('../index.js');
  const host = useMemoryHost();
  const saved = globalThis.console;
  try {
    __sluice.routeConsole();
    console.log('a', { b: 1 }, 2);
    console.warn('careful');
    console.error(new TypeError('bad'));
  } finally {
    globalThis.console = saved;
  }
  assert.deepEqual(host.logs.slice(0, 2), [
    { level: 'info', message: 'a {"b":1} 2' },
    { level: 'warn', message: 'careful' },
  ]);
  assert.equal(host.logs[2].level, 'error');
  assert.match(host.logs[2].message, /^TypeError: bad/);
});
