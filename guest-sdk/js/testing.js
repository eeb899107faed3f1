// Run processors in node tests, through the same frames the host uses.
//
//   import { run, runBatch, useMemoryHost } from '@sluice/sdk/testing';
//   const host = useMemoryHost();               // fresh stores, logs collected
//   const [out] = run(processor, new Record({ key: 'k', value: 'hi' }));
//   assert.throws(() => run(processor, new Record({ key: 'k' })), { code: 'null-value' });

import { Record, Reject, defineProcessor, memoryHost, setHost } from './index.js';
import { decodeOutput, encodeInput } from './frame.js';

export { memoryHost, setHost };

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
  if (config !== undefined) {
    p.init(Array.isArray(config) ? config : Object.entries(config).map(([k, v]) => [k, String(v)]));
  }
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
