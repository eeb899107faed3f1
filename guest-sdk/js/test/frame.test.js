import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  FrameError,
  Reader,
  decodeInput,
  decodeOutput,
  encodeInput,
  encodeOutput,
} from '../frame.js';

const b = (s) => new TextEncoder().encode(s);
const hex = (u8) => Buffer.from(u8).toString('hex');

test('an input record is laid out as FRAME.md says, byte for byte', () => {
  const frame = encodeInput([
    { key: b('k'), value: null, timestamp: 258, headers: [['h', b('v')], ['n', null]] },
  ]);
  assert.equal(
    hex(frame),
    [
      '01', '01000000', // version, count
      '0201000000000000', '01', // timestamp 258, flags: present
      '01000000', '6b', // key "k"
      'ffffffff', // value null
      '02000000', // two headers
      '01000000', '68', '01000000', '76', // h = v
      '01000000', '6e', 'ffffffff', // n = null
    ].join(''),
  );
});

test('input frames round-trip: nulls, empty bytes, headers, absent and negative timestamps', () => {
  const records = [
    { key: null, value: null, timestamp: null, headers: [] },
    { key: b(''), value: b(''), timestamp: 0, headers: [] },
    { key: b('k'), value: new Uint8Array([0, 255, 1]), timestamp: -5, headers: [['a', b('1')], ['a', b('2')], ['z', null]] },
    { key: b('é'), value: b('x'.repeat(1000)), timestamp: 1767225600000, headers: [['ü', b('')]] },
  ];
  const decoded = decodeInput(encodeInput(records));
  assert.equal(decoded.length, records.length);
  decoded.forEach((d, i) => {
    const r = records[i];
    assert.deepEqual(d.key && [...d.key], r.key && [...r.key]);
    assert.deepEqual(d.value && [...d.value], r.value && [...r.value]);
    assert.equal(d.timestamp, r.timestamp);
    assert.deepEqual(
      d.headers.map(([n, v]) => [n, v && [...v]]),
      r.headers.map(([n, v]) => [n, v && [...v]]),
    );
  });
});

test('an empty batch is five bytes and round-trips', () => {
  const frame = encodeInput([]);
  assert.equal(hex(frame), '0100000000');
  assert.deepEqual(decodeInput(frame), []);
  assert.deepEqual(decodeOutput(encodeOutput([])), []);
});

test('output frames round-trip ok groups (empty too) and rejections', () => {
  const statuses = [
    { ok: [] },
    { rejected: { code: 'bad-json', message: 'unexpected token ü' } },
    { ok: [{ key: b('a'), value: b('1'), timestamp: null, headers: [] }, { key: null, value: null, timestamp: 7, headers: [['h', null]] }] },
  ];
  const out = decodeOutput(encodeOutput(statuses));
  assert.deepEqual(out[0], { ok: [] });
  assert.deepEqual(out[1], statuses[1]);
  assert.equal(out[2].ok.length, 2);
  assert.equal(out[2].ok[0].timestamp, null);
  assert.equal(out[2].ok[1].timestamp, 7);
  assert.equal(out[2].ok[1].headers[0][1], null);
  // A rejection is: u8 1, string code, string message.
  const rej = encodeOutput([{ rejected: { code: 'x', message: '' } }]);
  assert.equal(hex(rej), '0101000000' + '01' + '0100000078' + '00000000');
});

test('decoded bytes are views into the frame, not copies', () => {
  const frame = encodeInput([{ key: b('key'), value: b('value'), timestamp: null, headers: [] }]);
  const [r] = decodeInput(frame);
  assert.equal(r.value.buffer, frame.buffer);
});

test('malformed input frames are FrameErrors naming the problem', () => {
  const good = encodeInput([{ key: b('k'), value: b('v'), timestamp: 1, headers: [['h', b('v')]] }]);
  const cases = [
    [new Uint8Array([]), /truncated at byte 0/],
    [new Uint8Array([2, 0, 0, 0, 0]), /version 2 is not supported/],
    [new Uint8Array([1, 1, 0, 0]), /truncated/],
    [new Uint8Array([1, 1, 0, 0, 0]), /truncated at byte 5/], // count 1, no record
    [good.subarray(0, good.length - 1), /truncated/],
    [Uint8Array.of(...good, 0), /1 trailing bytes/],
  ];
  for (const [frame, message] of cases) {
    assert.throws(() => decodeInput(frame), (e) => e instanceof FrameError && message.test(e.message), hex(frame));
  }
  // A length running past the end.
  const huge = Uint8Array.from(good);
  new DataView(huge.buffer).setUint32(5 + 9, 1000, true); // the key's length
  assert.throws(() => decodeInput(huge), /truncated at byte 18/);
  // A header name that is not UTF-8, or null.
  const badName = Uint8Array.from(good);
  badName[good.length - 6] = 0xff; // the name "h"
  assert.throws(() => decodeInput(badName), /not valid UTF-8/);
  const nullName = encodeInput([{ key: null, value: null, timestamp: null, headers: [] }]);
  const withNull = Uint8Array.of(...nullName.subarray(0, nullName.length - 4), 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);
  assert.throws(() => decodeInput(withNull), /is null/);
  assert.throws(() => new Reader('not bytes'), FrameError);
});

test('an unknown status in an output frame is an error', () => {
  assert.throws(() => decodeOutput(new Uint8Array([1, 1, 0, 0, 0, 7])), /unknown record status 7/);
});
