// The call path (record.js: records pointing into the batch, raw copies on
// output) checked against the reference codec (frame.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Record, defineProcessor } from '../index.js';
import { decodeOutput, encodeInput } from '../frame.js';
import { readBatch } from '../record.js';

const b = (s) => new TextEncoder().encode(s);
const plain = (r) => ({
  key: r.key && [...r.key],
  value: r.value && [...r.value],
  timestamp: r.timestamp,
  headers: r.headers.map(([n, v]) => [n, v && [...v]]),
});

/** A deterministic stream of pseudo-random numbers. */
function prng(seed) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function randomRecord(rand) {
  const bytes = () => {
    const r = rand();
    if (r < 0.15) return null;
    const n = r < 0.3 ? 0 : Math.floor(rand() * 40);
    return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  };
  const headers = Array.from({ length: Math.floor(rand() * 4) }, (_, i) => [['h', 'ü', 'trace-id', ''][Math.floor(rand() * 4)] + i, bytes()]);
  const ts = rand() < 0.2 ? null : Math.floor((rand() - 0.1) * 2 ** 45);
  return { key: bytes(), value: bytes(), timestamp: ts, headers };
}

// What each step does, on plain fields and on Records.
const steps = [
  ['pass', (f) => [f], (r) => r],
  ['value', (f) => [{ ...f, value: b('new') }], (r) => r.withValue('new')],
  ['key', (f) => [{ ...f, key: null }], (r) => r.withKey(null)],
  ['header', (f) => [{ ...f, headers: [...f.headers, ['x', b('1')]] }], (r) => r.withHeader('x', 1)],
  ['two headers', (f) => [{ ...f, headers: [...f.headers, ['x', b('1')], ['y', null]] }], (r) => r.withHeader('x', '1').withHeader('y', null)],
  ['timestamp', (f) => [{ ...f, timestamp: 5 }], (r) => r.withTimestamp(5)],
  ['no timestamp', (f) => [{ ...f, timestamp: null }], (r) => r.withTimestamp(null)],
  ['without', (f) => [{ ...f, headers: f.headers.filter(([n]) => n !== 'h0') }], (r) => r.withoutHeader('h0')],
  ['assign', (f) => [{ ...f, value: b('v'), headers: [...f.headers, ['z', b('')]] }], (r) => {
    r.value = 'v';
    r.headers.push(['z', new Uint8Array()]);
    return r;
  }],
  ['fan-out', (f) => [f, { ...f, value: null }, f], (r) => [r, r.withValue(null), r]],
  ['read then pass', (f) => [f], (r) => {
    void r.key;
    void r.value;
    void r.header('h0');
    return r;
  }],
  ['new record', (f) => [{ key: b('k'), value: b('{"a":1}'), timestamp: null, headers: [] }], () => ({ key: 'k', value: { a: 1 } })],
  ['drop', () => [], () => undefined],
];

test('the call path writes what the reference codec expects, for random records and every kind of change', () => {
  const rand = prng(42);
  for (let round = 0; round < 30; round++) {
    const inputs = Array.from({ length: Math.floor(rand() * 12) }, () => randomRecord(rand));
    const chosen = inputs.map(() => steps[Math.floor(rand() * steps.length)]);
    let i = 0;
    const p = defineProcessor((r) => chosen[i++][2](r));
    const out = decodeOutput(p.process(encodeInput(inputs)));
    assert.equal(out.length, inputs.length);
    out.forEach((status, j) => {
      const want = chosen[j][1](inputs[j]).map(plain);
      assert.deepEqual(status.ok.map(plain), want, `round ${round}, record ${j}: ${chosen[j][0]}`);
    });
  }
});

test('records read from a batch: fields, lazily, as views', () => {
  const frame = encodeInput([
    { key: b('k'), value: null, timestamp: -1, headers: [['a', b('1')], ['a', null], ['b', b('2')]] },
    { key: null, value: b('v'), timestamp: null, headers: [] },
  ]);
  const [r, s] = readBatch(frame);
  assert.ok(r instanceof Record);
  assert.equal(r.keyText(), 'k');
  assert.equal(r.value, null);
  assert.equal(r.timestamp, -1);
  assert.equal(r.header('a'), null);
  assert.equal(r.headerText('b'), '2');
  assert.equal(r.headers.length, 3);
  assert.equal(s.key, null);
  assert.equal(s.value.buffer, frame.buffer);
  assert.equal(s.timestamp, null);
  assert.deepEqual(s.headers, []);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), { key: 'k', value: null, timestamp: -1, headers: [['a', '1'], ['a', null], ['b', '2']] });
});

test('the call path refuses malformed frames like the reference codec', () => {
  const good = encodeInput([{ key: b('k'), value: b('v'), timestamp: 1, headers: [['h', b('v')]] }]);
  const bad = [
    new Uint8Array([]),
    new Uint8Array([2, 0, 0, 0, 0]),
    new Uint8Array([1, 0, 0, 0]),
    new Uint8Array([1, 1, 0, 0, 0]),
    new Uint8Array([1, 255, 255, 255, 255]),
    good.subarray(0, good.length - 1),
    good.subarray(0, 20),
    Uint8Array.of(...good, 0),
  ];
  const huge = Uint8Array.from(good);
  new DataView(huge.buffer).setUint32(5 + 9, 0xfffffff0, true);
  bad.push(huge);
  const nullName = Uint8Array.from(good);
  new DataView(nullName.buffer).setUint32(good.length - 10, 0xffffffff, true);
  bad.push(nullName);
  for (const frame of bad) {
    assert.throws(() => readBatch(frame), { name: 'FrameError' }, Buffer.from(frame).toString('hex'));
  }
  assert.equal(readBatch(good).length, 1);
});

test('a header name that is not UTF-8 is a bad frame when read, and passes through untouched when not', () => {
  const frame = encodeInput([{ key: null, value: b('v'), timestamp: null, headers: [['h', b('v')]] }]);
  frame[frame.length - 6] = 0xff;
  const reading = defineProcessor((r) => r.header('x'));
  assert.throws(() => reading.process(frame), (e) => e.payload?.code === 'bad-frame' && /UTF-8/.test(e.payload.message));
  const passing = defineProcessor((r) => r);
  const out = passing.process(frame);
  assert.deepEqual([...out.subarray(10)], [...frame.subarray(5)]);
});
