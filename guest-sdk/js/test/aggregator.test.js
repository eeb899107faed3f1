import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Record, Reject, __sluice, defineAggregator, memoryHost, setHost, store } from '../index.js';
import { decodeOutput, encodeInput } from '../frame.js';
import { runAggregator, runMerge, useMemoryHost } from '../testing.js';

const b = (s) => new TextEncoder().encode(s);
const text = (u8) => (u8 === null ? null : new TextDecoder().decode(u8));
const json = (u8) => JSON.parse(text(u8));
const rec = (key, value, extra = {}) => ({ key: key === null ? null : b(key), value: value === null ? null : b(value), timestamp: null, headers: [], ...extra });

/** Count and total of `amount`s per key; rejects a value without a numeric amount. */
const spec = {
  initialKeys: [],
  initial(key) {
    this.initialKeys.push(key === null ? null : text(key));
    return { count: 0, total: 0 };
  },
  add(sum, record) {
    const { amount } = record.valueJson();
    if (typeof amount !== 'number') throw new Reject('bad-amount', 'amount is not a number');
    return { count: sum.count + 1, total: sum.total + amount };
  },
  merge(key, a, b) {
    return { count: a.count + b.count, total: a.total + b.total };
  },
};
const sums = defineAggregator(spec);

test('each key threads its aggregate through its records; a rejection leaves it as it was', () => {
  spec.initialKeys.length = 0;
  const out = runAggregator(sums, [
    { key: 'a', value: '{"amount": 2}' },
    { key: 'b', value: '{"amount": 10}' },
    { key: 'a', value: '{"amount": "x"}' },
    { key: 'a', value: 'not json' },
    { key: 'a', value: '{"amount": 3.5}' },
    { key: null, value: '{"amount": 1}' },
    { key: 'b', value: '{"amount": 5}' },
  ]);
  assert.deepEqual(out[0], { count: 1, total: 2 });
  assert.deepEqual(out[1], { count: 1, total: 10 });
  assert.ok(out[2] instanceof Reject);
  assert.deepEqual([out[2].code, out[2].message], ['bad-amount', 'amount is not a number']);
  assert.equal(out[3].code, 'bad-json');
  assert.deepEqual(out[4], { count: 2, total: 5.5 }, 'continues from before the rejected records');
  assert.deepEqual(out[5], { count: 1, total: 1 }, 'a null key is a key of its own');
  assert.deepEqual(out[6], { count: 2, total: 15 });
  assert.deepEqual(spec.initialKeys, ['a', 'b', null], 'initial once per key, with the key');
});

test('the aggregates frame gives each key its stored aggregate; null starts from initial', () => {
  const frame = encodeInput([rec('a', '{"count": 4, "total": 40}'), rec('b', null)]);
  const statuses = decodeOutput(sums.add(frame, encodeInput([rec('b', '{"amount": 1}'), rec('a', '{"amount": 2}')])));
  assert.deepEqual(json(statuses[0].ok[0].value), { count: 1, total: 1 });
  assert.deepEqual(json(statuses[1].ok[0].value), { count: 5, total: 42 });
  // The same through the testing helper.
  const out = runAggregator(sums, [{ key: 'a', value: '{"amount": 2}' }], { aggregates: { a: { count: 4, total: 40 } } });
  assert.deepEqual(out, [{ count: 5, total: 42 }]);
});

test('an ok status is one record: the key, the aggregate as JSON, no timestamp, no headers', () => {
  const batch = encodeInput([
    rec('k', '{"amount": 1}', { timestamp: 1234, headers: [['h', b('v')]] }),
    rec(null, '{"amount": 2}', { timestamp: 5 }),
  ]);
  const statuses = decodeOutput(sums.add(encodeInput([]), batch));
  assert.equal(statuses.length, 2);
  for (const [i, key] of [[0, 'k'], [1, null]]) {
    assert.equal(statuses[i].ok.length, 1);
    const [r] = statuses[i].ok;
    assert.equal(text(r.key), key);
    assert.equal(r.timestamp, null, 'absent: the host keeps the input timestamp');
    assert.deepEqual(r.headers, []);
  }
  assert.equal(text(statuses[0].ok[0].value), '{"count":1,"total":1}');
  assert.deepEqual([...sums.add(encodeInput([]), encodeInput([]))], [1, 0, 0, 0, 0], 'an empty batch');
});

test('a stored aggregate that does not decode rejects the records of its key (bad-aggregate)', () => {
  const out = runAggregator(
    sums,
    [
      { key: 'a', value: '{"amount": 1}' },
      { key: 'b', value: '{"amount": 1}' },
      { key: 'a', value: '{"amount": 1}' },
    ],
    { aggregates: [['a', b('{broken')]] },
  );
  assert.equal(out[0].code, 'bad-aggregate');
  assert.match(out[0].message, /^the stored aggregate does not decode: /);
  assert.deepEqual(out[1], { count: 1, total: 1 });
  assert.equal(out[2].code, 'bad-aggregate');
});

test('changes add made before rejecting are not kept', () => {
  const mutating = defineAggregator({
    initial: () => ({ items: [] }),
    add(agg, record) {
      agg.items.push(record.valueText()); // changed in place...
      if (record.valueText() === 'bad') throw new Reject('bad', 'no'); // ...then rejected
      return agg;
    },
  });
  const out = runAggregator(mutating, ['x', 'bad', 'y', 'bad', 'z'].map((value) => ({ key: 'k', value })));
  assert.deepEqual(out[0], { items: ['x'] });
  assert.deepEqual(out[2], { items: ['x', 'y'] });
  assert.deepEqual(out[4], { items: ['x', 'y', 'z'] });
  // A rejected first record of a key starts the next one from initial again.
  const first = runAggregator(mutating, ['bad', 'y'].map((value) => ({ key: 'k', value })));
  assert.deepEqual(first[1], { items: ['y'] });
});

test('a returned Reject rejects; BigInts are refused as bad-json', () => {
  const agg = defineAggregator({
    initial: () => 0,
    add(n, record) {
      const v = record.valueText();
      if (v === 'no') return new Reject('nope', 'returned');
      if (v === 'big') return 10n;
      return n + 1;
    },
  });
  const out = runAggregator(agg, ['a', 'no', 'big', 'b'].map((value) => ({ key: 'k', value })));
  assert.deepEqual([out[0], out[1].code, out[2].code, out[3]], [1, 'nope', 'bad-json', 2]);
});

test('merge: the user\'s, or merge-unsupported by default; stored aggregates must decode', () => {
  const merged = json(sums.merge(b('k'), b('{"count":1,"total":2}'), b('{"count":3,"total":4}')));
  assert.deepEqual(merged, { count: 4, total: 6 });
  assert.deepEqual(runMerge(sums, { count: 1, total: 0.5 }, { count: 2, total: 1 }, { key: 'k' }), { count: 3, total: 1.5 });

  const seen = [];
  const keyed = defineAggregator({ initial: () => 0, add: (n) => n + 1, merge: (key, a, b) => (seen.push(key), a + b) });
  assert.equal(runMerge(keyed, 1, 2), 3);
  assert.equal(runMerge(keyed, 1, 2, { key: 'k' }), 3);
  assert.deepEqual(seen.map((k) => (k === null ? null : text(k))), [null, 'k']);

  const noMerge = defineAggregator({ initial: () => 0, add: (n) => n + 1 });
  assert.throws(
    () => noMerge.merge(null, b('1'), b('2')),
    (e) => e.payload?.code === 'merge-unsupported' && e.payload.message === 'this aggregator does not implement `merge`',
  );
  assert.throws(() => runMerge(noMerge, 1, 2), (e) => e instanceof Reject && e.code === 'merge-unsupported');
  assert.throws(() => sums.merge(null, b('{'), b('1')), (e) => e.payload?.code === 'bad-aggregate');
  const refusing = defineAggregator({ initial: () => 0, add: (n) => n, merge: () => { throw new Reject('no-merge', 'not these'); } });
  assert.throws(() => refusing.merge(null, b('1'), b('2')), (e) => e.payload?.code === 'no-merge' && e.payload.message === 'not these');
});

test('init gets the config, once; a Reject there is the call\'s error', () => {
  const scaled = defineAggregator({
    init(config) {
      this.factor = config.number('factor', 1);
    },
    initial: () => 0,
    add(n, record) {
      return n + this.factor * Number(record.valueText());
    },
  });
  assert.deepEqual(runAggregator(scaled, [{ key: 'k', value: '2' }], { config: { factor: 10 } }), [20]);
  assert.throws(() => scaled.init([['factor', 'x']]), (e) => e.payload?.code === 'bad-config' && !(e instanceof Reject));
  assert.throws(() => runAggregator(scaled, [], { config: { factor: 'x' } }), (e) => e instanceof Reject && e.code === 'bad-config');
  // Without init, add runs it with an empty config first.
  let inits = 0;
  const lazy = defineAggregator({ init: () => void inits++, initial: () => 0, add: (n) => n + 1 });
  runAggregator(lazy, [{ key: 'k', value: 'x' }]);
  runAggregator(lazy, [{ key: 'k', value: 'x' }]);
  assert.equal(inits, 1);
});

test('a malformed frame is the call\'s error (bad-frame), in either argument', () => {
  const good = encodeInput([rec('k', '{"amount": 1}')]);
  assert.throws(() => sums.add(new Uint8Array([1, 1, 0, 0, 0]), good), (e) => e.payload?.code === 'bad-frame' && /aggregates/.test(e.payload.message));
  assert.throws(() => sums.add(encodeInput([]), new Uint8Array([2, 0, 0, 0, 0])), (e) => e.payload?.code === 'bad-frame' && /version 2/.test(e.payload.message));
  assert.throws(() => sums.add(encodeInput([]), new Uint8Array([1, 0, 0, 0, 0, 9])), (e) => e.payload?.code === 'bad-frame' && /trailing/.test(e.payload.message));
});

test('other exceptions trap: logged, thrown without a payload', () => {
  const host = useMemoryHost();
  const buggy = defineAggregator({
    initial: () => ({}),
    add(agg, record) {
      switch (record.valueText()) {
        case 'bug': return agg.missing.field;
        case 'forgot': agg.n = 1; return;
        case 'async': return Promise.resolve(agg);
        default: return agg;
      }
    },
    merge() {
      throw new RangeError('merge bug');
    },
  });
  for (const [value, pattern] of [['bug', /^add threw \(a trap\): TypeError/], ['forgot', /add returned nothing: it must return the new aggregate/], ['async', /must not be async/]]) {
    assert.throws(() => runAggregator(buggy, [{ key: 'k', value: 'ok' }, { key: 'k', value }]), (e) => e.name === 'Trap' && !('payload' in e), value);
    const line = host.logs.pop();
    assert.equal(line.level, 'error');
    assert.match(line.message, pattern);
  }
  assert.throws(() => buggy.merge(null, b('{}'), b('{}')), (e) => e.name === 'Trap' && !('payload' in e));
  assert.match(host.logs.pop().message, /^merge threw \(a trap\): RangeError: merge bug/);
  const badInit = defineAggregator({ init() { throw new Error('init bug'); }, initial: () => 0, add: (n) => n });
  assert.throws(() => badInit.init([]), (e) => e.name === 'Trap' && !('payload' in e));
});

test('defineAggregator refuses what is not an aggregator, and returns a defined one as it is', () => {
  assert.throws(() => defineAggregator((r) => r), /defineAggregator takes \{ init\?, initial\(key\), add\(aggregate, record\), merge\? \}/);
  assert.throws(() => defineAggregator({ initial: () => 0 }), TypeError);
  assert.throws(() => defineAggregator({ initial: () => 0, add: (n) => n, merge: 3 }), /`merge` is a number/);
  assert.equal(defineAggregator(sums), sums);
});

test('in the aggregator world there are no state stores: a StateError (no-state) rejects the record', () => {
  const previous = setHost(__sluice.logOnlyHost(memoryHost({ quiet: true }).log));
  try {
    const stateful = defineAggregator({ initial: () => 0, add: (n) => (store('s').get('k'), n + 1) });
    const [out] = runAggregator(stateful, [{ key: 'k', value: 'x' }]);
    assert.equal(out.code, 'no-state');
  } finally {
    setHost(previous);
  }
});

test('the module\'s aggregator: `aggregator`, else the default export', () => {
  const spec2 = { initial: () => 0, add: (n) => n + 1 };
  assert.equal(runAggregator(__sluice.aggregatorOf({ aggregator: spec2 }), [{ key: 'k', value: 'x' }])[0], 1);
  assert.equal(runAggregator(__sluice.aggregatorOf({ default: defineAggregator(spec2) }), [{ key: 'k', value: 'x' }])[0], 1);
  assert.throws(() => __sluice.aggregatorOf({ processor: {} }), /neither `aggregator` nor a default export/);
});

test('Records read in add are the SDK\'s Records', () => {
  const seen = [];
  const agg = defineAggregator({ initial: () => 0, add: (n, r) => (seen.push(r instanceof Record && r.headerText('h')), n) });
  runAggregator(agg, [new Record({ key: 'k', value: '1', headers: [['h', 'v']] })]);
  assert.deepEqual(seen, ['v']);
});

test('a class instance is an aggregator too: its methods, with `this` the instance', () => {
  class Scaled {
    factor = 1;
    init(config) {
      this.factor = config.number('factor', 1);
    }
    initial() {
      return 0;
    }
    add(n, record) {
      return n + this.factor * Number(record.valueText());
    }
    merge(key, a, b) {
      return a + b;
    }
  }
  const agg = defineAggregator(new Scaled());
  assert.deepEqual(runAggregator(agg, [{ key: 'k', value: '2' }, { key: 'k', value: '3' }], { config: { factor: 10 } }), [20, 50]);
  assert.equal(runMerge(agg, 1, 2), 3);
  assert.throws(() => defineAggregator(Scaled), /defineAggregator takes/, 'the class itself is not');
});
