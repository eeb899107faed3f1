// Run without a broker: `sluice plugin test plugins/page-views-ts`
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Reject } from '@sluice/sdk';
import { runAggregator } from '@sluice/sdk/testing';

import { aggregator } from '../src/index.ts';

const view = (page: string, user: string) => ({ key: page, value: JSON.stringify({ user }) });

test('counts views and distinct visitors, the visitors sorted', () => {
  const out = runAggregator(aggregator, [view('/a', 'u2'), view('/a', 'u1'), view('/a', 'u2'), view('/b', 'u1')]);
  assert.deepEqual(out[2], { views: 3, visitors: 2, seen: ['u1', 'u2'] });
  assert.deepEqual(out[3], { views: 1, visitors: 1, seen: ['u1'] });
});

test('a view without a user is rejected and not counted', () => {
  const out = runAggregator(aggregator, [view('/a', 'u1'), { key: '/a', value: '{"page": "/a"}' }, { key: '/a', value: 'x' }, view('/a', 'u3')]);
  assert.equal((out[1] as Reject).code, 'bad-json');
  assert.equal((out[2] as Reject).code, 'bad-json');
  assert.deepEqual(out[3], { views: 2, visitors: 2, seen: ['u1', 'u3'] });
});
