// {{name}}: a Sluice aggregator. Counts each key's records and totals their
// `amount`; a record whose value is not JSON with a numeric `amount` is
// rejected (the pipeline's `rejected` policy applies) and leaves the key's
// aggregate as it was. Build: `sluice plugin build .`; test: `sluice plugin test .`
import { defineAggregator, Reject, type Record } from '@sluice/sdk';

/** One key's aggregate, stored (and sent downstream) as JSON. */
export interface Totals {
  count: number;
  total: number;
}

export const aggregator = defineAggregator({
  // The aggregate of a key that has none yet (it gets the key, as bytes).
  initial(): Totals {
    return { count: 0, total: 0 };
  },

  // The key's aggregate after one more record.
  add(totals, record) {
    const amount = amountOf(record);
    return { count: totals.count + 1, total: totals.total + amount };
  },

  // Session windows merge two sessions of a key when a record bridges them.
  merge(_key, a, b) {
    return { count: a.count + b.count, total: a.total + b.total };
  },
});

/** The record's `amount`, or a rejection. */
function amountOf(record: Record): number {
  let value: { amount?: unknown } | null = null;
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
