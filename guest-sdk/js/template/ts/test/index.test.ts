// Tests of {{name}}, run without a broker: `sluice plugin test .`
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '@sluice/sdk/testing';

import { processor } from '../src/index.ts';

test('upper-cases the value', () => {
  const [out] = run(processor, { key: 'k', value: 'hello' });
  assert.equal(out.valueText(), 'HELLO');
});

test('rejects a record without a value', () => {
  assert.throws(() => run(processor, { key: 'k', value: '' }), { code: 'empty' });
  assert.throws(() => run(processor, { key: 'k', value: null }), { code: 'empty' });
});
