// Run processors and aggregators in node tests, through the same frames
// the host uses.
//
//   import { run, runBatch, runAggregator, runMerge, useMemoryHost } from '@sluice/sdk/testing';
//   const host = useMemoryHost();               // fresh stores, logs collected
//   const [out] = run(processor, new Record({ key: 'k', value: 'hi' }));
//   assert.throws(() => run(processor, new Record({ key: 'k' })), { code: 'null-value' });
//
//   const sums = runAggregator(aggregator, [{ key: 'a', value: '2' }, { key: 'a', value: 'x' }]);
//   // [ <a's aggregate after the first record>, Reject('bad-amount') ]
//   assert.deepEqual(runMerge(aggregator, { n: 1 }, { n: 2 }), { n: 3 });

import { Record, Reject, defineAggregator, defineProcessor, memoryHost, setHost, toBytes } from './index.js';
import { decodeOutput, encodeInput } from './frame.js';

export { memoryHost, setHost };

function pairs(config) {
  return Array.isArray(config) ? config : Object.entries(config).map(([k, v]) => [k, String(v)]);
}

/** Runs an export call; an `err` result (a thrown `payload`) becomes a Reject. */
function call(f) {
  try {
    return f();
  } catch (e) {
    if (e && typeof e === 'object' && e.payload && typeof e.payload.code === 'string') {
      throw new Reject(e.payload.code, e.payload.message);
    }
    throw e;
  }
}

/** Installs a fresh in-memory host (stores empty; logs collected, quiet by
 * default) and returns it: `host.logs`, `host.stores`. */
export function useMemoryHost({ quiet = true } = {}) {
  const host = memoryHost({ quiet });
  setHost(host);
  return host;
}

/**
 * Runs `processor` (a defineProcessor result, a function or a spec) over
 * `records` in one call batch; returns one entry per record: an array of
 * output Records, or the Reject that rejected it. `config` (an object or
 * pairs) goes to init first. A trap throws.
 */
export function runBatch(processor, records, { config } = {}) {
  const p = defineProcessor(processor);
  if (config !== undefined) p.init(pairs(config));
  const input = encodeInput(records.map((r) => Record.from(r)));
  return decodeOutput(p.process(input)).map((s) =>
    s.rejected ? new Reject(s.rejected.code, s.rejected.message) : s.ok.map((f) => new Record(f)),
  );
}

/** Runs `processor` on one record: returns its output Records, throws its Reject. */
export function run(processor, record, options) {
  const [result] = runBatch(processor, [record], options);
  if (result instanceof Reject) throw result;
  return result;
}

/** An aggregate as the host stores it: JSON bytes (bytes are kept as they are). */
function stored(aggregate) {
  return aggregate instanceof Uint8Array ? aggregate : new TextEncoder().encode(JSON.stringify(aggregate));
}

/**
 * Runs `aggregator` (a defineAggregator result or its spec) over `records`
 * in one `add` call, as the host does; returns one entry per record: the
 * key's aggregate after it (decoded from the JSON the aggregator wrote), or
 * the Reject that rejected it (the key's aggregate is then unchanged).
 * Keys start with no aggregate (so from `initial(key)`), except those in
 * `aggregates` (an object or [key, aggregate] pairs; an aggregate given as
 * bytes is passed as it is, to test one that does not decode). `config`
 * goes to init first; an `err` from init or the call is thrown as a
 * Reject, a trap as it is.
 */
export function runAggregator(aggregator, records, { config, aggregates } = {}) {
  const a = defineAggregator(aggregator);
  if (config !== undefined) call(() => a.init(pairs(config)));
  const start = aggregates === undefined ? [] : Array.isArray(aggregates) ? aggregates : Object.entries(aggregates);
  const frame = encodeInput(start.map(([key, aggregate]) => ({ key: toBytes(key), value: stored(aggregate), timestamp: null, headers: [] })));
  const input = encodeInput(records.map((r) => Record.from(r)));
  const statuses = decodeOutput(call(() => a.add(frame, input)));
  return statuses.map((s, i) => {
    if (s.rejected) return new Reject(s.rejected.code, s.rejected.message);
    if (s.ok.length !== 1) throw new Error(`record ${i}: an ok status holds one aggregate, not ${s.ok.length}`);
    return JSON.parse(new TextDecoder().decode(s.ok[0].value));
  });
}

/**
 * Merges two aggregates of one key with `aggregator`'s `merge`, through
 * the bytes the host passes (`a` is the earlier; `key`: a string, bytes or
 * null). Returns the merged aggregate; a refusal (`merge-unsupported`
 * without a merge) is thrown as a Reject.
 */
export function runMerge(aggregator, a, b, { key = null, config } = {}) {
  const agg = defineAggregator(aggregator);
  if (config !== undefined) call(() => agg.init(pairs(config)));
  const merged = call(() => agg.merge(toBytes(key), stored(a), stored(b)));
  return JSON.parse(new TextDecoder().decode(merged));
}
