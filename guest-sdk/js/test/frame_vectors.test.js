// The golden frame vectors of wit/frames/ (see its README.md), read alike by
// every SDK's tests: each valid vector decodes to its JSON and its JSON
// encodes to its bytes; each malformed one is refused with a FrameError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { FrameError, decodeInput, decodeOutput, encodeInput, encodeOutput } from '../frame.js';

const dir = fileURLToPath(new URL('../../../wit/frames/', import.meta.url));
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

const unhex = (text) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const hex = (u8) => Buffer.from(u8).toString('hex');

// JSON bytes ({"utf8"}, {"hex"} or null) as a Uint8Array or null.
const bytesOf = (j) => {
  if (j === null) return null;
  if ('utf8' in j) return new TextEncoder().encode(j.utf8);
  return unhex(j.hex);
};
const recordOf = (j) => ({
  key: bytesOf(j.key),
  value: bytesOf(j.value),
  timestamp: j.timestamp,
  headers: j.headers.map(([name, value]) => [name, bytesOf(value)]),
});
const statusOf = (j) =>
  'rejected' in j ? { rejected: { code: j.rejected.code, message: j.rejected.message } } : { ok: j.ok.map(recordOf) };

// A decoded record with its bytes as hex, to compare by value.
const plain = (r) => ({
  key: r.key === null ? null : hex(r.key),
  value: r.value === null ? null : hex(r.value),
  timestamp: r.timestamp,
  headers: r.headers.map(([n, v]) => [n, v === null ? null : hex(v)]),
});
const plainStatus = (s) => ('rejected' in s ? { rejected: s.rejected } : { ok: s.ok.map(plain) });

test('wit/frames/ holds the golden vectors', () => {
  assert.ok(names.length >= 8, `only ${names.length} vectors in ${dir}`);
});

for (const name of names) {
  test(`golden frame ${name}`, () => {
    const want = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
    const bytes = unhex(readFileSync(join(dir, `${name}.hex`), 'utf8'));
    const input = want.direction === 'input';
    assert.ok(input || want.direction === 'output', `direction ${want.direction}`);
    const decode = input ? decodeInput : decodeOutput;
    if (want.error === true) {
      assert.throws(() => decode(bytes), FrameError, `${name} must be refused (${want.reason})`);
      return;
    }
    if (input) {
      const expected = want.records.map(recordOf);
      assert.deepEqual(decode(bytes).map(plain), expected.map(plain), 'decode');
      assert.equal(hex(encodeInput(expected)), hex(bytes), 'encode');
    } else {
      const expected = want.statuses.map(statusOf);
      assert.deepEqual(decode(bytes).map(plainStatus), expected.map(plainStatus), 'decode');
      assert.equal(hex(encodeOutput(expected)), hex(bytes), 'encode');
    }
  });
}
