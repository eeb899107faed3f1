// {{name}}: a Sluice aggregator. Counts each key's records and totals their
// `amount`; a record whose value is not JSON with a numeric `amount` is
// rejected (the pipeline's `rejected` policy applies) and leaves the key's
// aggregate as it was. Build: `sluice plugin build .`; test: `sluice plugin test .`
import { defineAggregator, Reject } from '@sluice/sdk';

export const aggregator = defineAggregator({
  // The aggregate of a key that has none yet (it gets the key, as bytes).
  // Aggregates are stored, and sent downstream, as JSON.
  initial(key) {
    return { count: 0, total: 0 };
  },

  // The key's aggregate after one more record.
  add(totals, record) {
    const amount = amountOf(record);
    return { count: totals.count + 1, total: totals.total + amount };
  },

  // Session windows merge two sessions of a key when a record bridges them.
  merge(key, a, b) {
    return { count: a.count + b.count, total: a.total + b.total };
  },
});

/** The record's `amount`, or a rejection. */
function amountOf(record) {
  let value = null;
  try {
    value = record.valueJson();
  } catch {
    // Not JSON: rejected below.
  }
  if (typeof value?.amount !== 'number') {
    throw new Reject('bad-amount', 'the value is not JSON with a numeric `amount`');
  }
  return value.amount;
}
