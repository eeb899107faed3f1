// Tests of {{name}}, run without a broker: `sluice plugin test .`
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAggregator, runMerge } from '@sluice/sdk/testing';

import { aggregator } from '../src/index.js';

test('counts and totals each key; a value without an amount is rejected', () => {
  const out = runAggregator(aggregator, [
    { key: 'a', value: '{"amount": 12.5}' },
    { key: 'b', value: 'not json' },
    { key: 'a', value: '{"amount": 7.5}' },
    { key: 'b', value: '{"amount": 1}' },
  ]);
  assert.deepEqual(out[0], { count: 1, total: 12.5 });
  assert.equal(out[1].code, 'bad-amount');
  assert.deepEqual(out[2], { count: 2, total: 20 });
  assert.deepEqual(out[3], { count: 1, total: 1 }, 'the rejected record left b as it was');
});

test('merging adds counts and totals', () => {
  const merged = runMerge(aggregator, { count: 1, total: 2 }, { count: 2, total: 3 });
  assert.deepEqual(merged, { count: 3, total: 5 });
});
