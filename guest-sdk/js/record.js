// Records, rejections, and the call path's frame codec.
//
// A record read from a call batch keeps pointing into the batch: its key,
// value and headers are decoded only when the plugin reads them, and what
// it did not replace is copied back to the output frame as raw bytes. Under
// the component's JavaScript interpreter every call and allocation counts,
// so this path is written flat; frame.js is the plain reference codec
// (tests check one against the other).

import { FrameError } from './frame.js';

const NULL = 0xffffffff;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------
// Rejections

/**
 * A plugin's refusal of one record: throw it (or return it) from `process`.
 * `code` is short and machine-readable (`bad-json`), `message` is for people.
 */
export class Reject extends Error {
  constructor(code, message = code) {
    super(message);
    this.name = 'Reject';
    this.code = String(code);
  }
}

// ---------------------------------------------------------------------------
// Bytes

/**
 * Bytes from a value: a Uint8Array as it is, another ArrayBufferView or an
 * ArrayBuffer as a view of its bytes, a string as UTF-8, null/undefined as
 * null, anything else as JSON.
 */
export function toBytes(v) {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return utf8.encode(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  const json = JSON.stringify(v);
  if (json === undefined) throw new TypeError(`cannot turn ${typeof v} into bytes`);
  return utf8.encode(json);
}

/** UTF-8 text of `bytes`; throws Reject('bad-utf8') when it is not UTF-8. */
export function textOf(bytes, what = 'value') {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new Reject('bad-utf8', `the ${what} is not valid UTF-8`);
  }
}

function given(v, what) {
  if (v === undefined) throw new TypeError(`${what} is undefined (use null for a null ${what})`);
  return toBytes(v);
}

function normalizeHeaders(h) {
  if (h === null || h === undefined) return [];
  const pairs = Array.isArray(h) ? h : h instanceof Map ? [...h] : Object.entries(h);
  return pairs.map(([name, value]) => [String(name), toBytes(value)]);
}

function checkTimestamp(t) {
  if (t === null || t === undefined) return null;
  if (t instanceof Date) t = t.getTime();
  if (!Number.isSafeInteger(t)) {
    throw new TypeError(`a timestamp is a whole number of milliseconds, not ${t}`);
  }
  return t;
}

// ---------------------------------------------------------------------------
// Records

/** The call batch a record was read from. */
class Batch {
  constructor(buf) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

/** The `bytes` field at `at` of a batch: null or a view. */
function bytesAt(batch, at) {
  const len = batch.dv.getUint32(at, true);
  return len === NULL ? null : batch.buf.subarray(at + 4, at + 4 + len);
}

/** The headers in bytes [from, to) of a batch (a count, then the headers). */
function headersAt(batch, from) {
  const { buf, dv } = batch;
  const count = dv.getUint32(from, true);
  const out = new Array(count);
  let p = from + 4;
  for (let i = 0; i < count; i++) {
    const nameLen = dv.getUint32(p, true);
    let name;
    try {
      name = strictUtf8.decode(buf.subarray(p + 4, p + 4 + nameLen));
    } catch {
      throw new FrameError(`string at byte ${p} is not valid UTF-8`);
    }
    p += 4 + nameLen;
    const len = dv.getUint32(p, true);
    out[i] = [name, len === NULL ? null : buf.subarray(p + 4, p + 4 + len)];
    p += len === NULL ? 4 : 4 + len;
  }
  return out;
}

/**
 * One Kafka record. `key` and `value` are Uint8Array or null (a null key,
 * a tombstone); `timestamp` is UTC milliseconds, or null (on output: keep
 * the input record's); `headers` is a list of [name, Uint8Array|null], in
 * order, names may repeat. The `with…` methods return a changed copy.
 */
export class Record {
  /**
   * @param {{key?: any, value?: any, timestamp?: number|Date|null,
   *          headers?: Array<[string, any]>|Object<string, any>|Map<string, any>}} [fields]
   * key and value: a string (UTF-8), bytes, null, or anything else as JSON.
   */
  constructor({ key = null, value = null, timestamp = null, headers = [] } = {}) {
    this._k = toBytes(key);
    this._v = toBytes(value);
    this._h = normalizeHeaders(headers);
    this.timestamp = checkTimestamp(timestamp);
  }

  /** A Record from a Record (as it is) or from plain fields. */
  static from(r) {
    if (r instanceof Record) return r;
    if (r === null || typeof r !== 'object') {
      throw new TypeError(`a record is a Record or {key, value, timestamp, headers}, not ${r}`);
    }
    return new Record(r);
  }

  get key() {
    if (this._k !== undefined) return this._k;
    if (this._kc === undefined) this._kc = bytesAt(this._src, this._start + 9);
    return this._kc;
  }

  set key(v) {
    this._k = toBytes(v);
  }

  get value() {
    if (this._v !== undefined) return this._v;
    if (this._vc === undefined) this._vc = bytesAt(this._src, this._vs);
    return this._vc;
  }

  set value(v) {
    this._v = toBytes(v);
  }

  get headers() {
    if (this._h === undefined) {
      const raw = headersAt(this._src, this._hs);
      this._h = this._hx === undefined ? raw : raw.concat(this._hx);
      this._hx = undefined;
    }
    return this._h;
  }

  set headers(v) {
    this._h = normalizeHeaders(v);
    this._hx = undefined;
  }

  _copy() {
    const r = Object.create(Record.prototype);
    r._src = this._src;
    r._start = this._start;
    r._vs = this._vs;
    r._hs = this._hs;
    r._end = this._end;
    r._ts0 = this._ts0;
    r.timestamp = this.timestamp;
    if (this._k !== undefined) r._k = this._k;
    if (this._kc !== undefined) r._kc = this._kc;
    if (this._v !== undefined) r._v = this._v;
    if (this._vc !== undefined) r._vc = this._vc;
    if (this._h !== undefined) r._h = this._h.slice();
    if (this._hx !== undefined) r._hx = this._hx;
    return r;
  }

  /** The key as UTF-8 text, or null for a null key; Reject('bad-utf8') if not UTF-8. */
  keyText() {
    const key = this.key;
    return key === null ? null : textOf(key, 'key');
  }

  /** The value as UTF-8 text; Reject('null-value') for a tombstone, Reject('bad-utf8'). */
  valueText() {
    const value = this.value;
    if (value === null) throw new Reject('null-value', 'the record has no value');
    return textOf(value);
  }

  /** The value parsed as JSON; Reject('bad-json') if it is null or not JSON. */
  valueJson() {
    const value = this.value;
    if (value === null) throw new Reject('bad-json', 'the record has no value');
    let text;
    try {
      text = strictUtf8.decode(value);
    } catch {
      throw new Reject('bad-json', 'the value is not valid UTF-8');
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Reject('bad-json', e.message);
    }
  }

  /** The value of the last header named `name`: bytes, null (a null header), or undefined. */
  header(name) {
    const extra = this._h === undefined ? this._hx : undefined;
    if (extra !== undefined) {
      for (let i = extra.length - 1; i >= 0; i--) if (extra[i][0] === name) return extra[i][1];
    }
    const all = this._h ?? headersAt(this._src, this._hs);
    for (let i = all.length - 1; i >= 0; i--) if (all[i][0] === name) return all[i][1];
    return undefined;
  }

  /** The last header named `name` as text, or undefined (absent or null). */
  headerText(name) {
    const v = this.header(name);
    return v === null || v === undefined ? undefined : textOf(v, `header \`${name}\``);
  }

  /** A copy with this key (string, bytes, null, or JSON). */
  withKey(key) {
    const r = this._copy();
    r._k = given(key, 'key');
    return r;
  }

  /** A copy with this value: a string (UTF-8), bytes, null (a tombstone), or anything else as JSON. */
  withValue(value) {
    const r = this._copy();
    r._v = given(value, 'value');
    return r;
  }

  /** A copy whose value is `value` as JSON (a string too becomes a JSON string). */
  withJson(value) {
    const r = this._copy();
    r._v = utf8.encode(JSON.stringify(value));
    return r;
  }

  /** A copy with this event time (UTC ms or a Date; null keeps the input's). */
  withTimestamp(timestamp) {
    const r = this._copy();
    r.timestamp = checkTimestamp(timestamp);
    return r;
  }

  /** A copy with one more header (the value: string, bytes, null, or JSON, so `3` is "3"). */
  withHeader(name, value) {
    const r = this._copy();
    const header = [String(name), given(value, 'header value')];
    if (r._h !== undefined) r._h.push(header);
    else r._hx = r._hx === undefined ? [header] : r._hx.concat([header]);
    return r;
  }

  /** A copy without any header named `name`. */
  withoutHeader(name) {
    const r = this._copy();
    r._h = r.headers.filter(([n]) => n !== name);
    return r;
  }

  /** Plain fields, for logs and test diffs. */
  toJSON() {
    const text = (b) => {
      if (b === null) return null;
      try {
        return strictUtf8.decode(b);
      } catch {
        return Array.from(b);
      }
    };
    return {
      key: text(this.key),
      value: text(this.value),
      timestamp: this.timestamp,
      headers: this.headers.map(([n, v]) => [n, text(v)]),
    };
  }
}

Record.prototype._src = null;

// ---------------------------------------------------------------------------
// The call path: input frame -> Records, Records -> output frame.

/**
 * Reads an input frame into Records that point into it. Checks the layout
 * (lengths, counts, trailing bytes; header names are checked as UTF-8 when
 * read); throws a FrameError.
 */
export function readBatch(frame) {
  if (!(frame instanceof Uint8Array)) {
    if (ArrayBuffer.isView(frame)) frame = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
    else throw new FrameError('a frame is bytes');
  }
  const batch = new Batch(frame);
  const { dv } = batch;
  const end = frame.length;
  if (end < 5) throw new FrameError(`frame truncated at byte ${end < 1 ? 0 : 1}`);
  if (frame[0] !== 1) throw new FrameError(`frame version ${frame[0]} is not supported (expected 1)`);
  const count = dv.getUint32(1, true);
  // A record takes at least 21 bytes: a count beyond that is truncated.
  if (count > (end - 5) / 21) throw new FrameError(`frame truncated: ${count} records cannot fit in ${end} bytes`);
  const records = new Array(count);
  let p = 5;
  for (let i = 0; i < count; i++) {
    const start = p;
    if (p + 13 > end) throw new FrameError(`frame truncated at byte ${p}`);
    const ts = frame[p + 8] & 1 ? Number(dv.getBigInt64(p, true)) : null;
    p += 9;
    let len = dv.getUint32(p, true);
    p += len === NULL ? 4 : 4 + len;
    if (p + 4 > end) throw new FrameError(`frame truncated at byte ${Math.min(p, end)}`);
    const vs = p;
    len = dv.getUint32(p, true);
    p += len === NULL ? 4 : 4 + len;
    if (p + 4 > end) throw new FrameError(`frame truncated at byte ${Math.min(p, end)}`);
    const hs = p;
    const headers = dv.getUint32(p, true);
    p += 4;
    for (let h = 0; h < headers; h++) {
      if (p + 4 > end) throw new FrameError(`frame truncated at byte ${p}`);
      len = dv.getUint32(p, true);
      if (len === NULL) throw new FrameError(`string at byte ${p} is null`);
      p += 4 + len;
      if (p + 4 > end) throw new FrameError(`frame truncated at byte ${Math.min(p, end)}`);
      len = dv.getUint32(p, true);
      p += len === NULL ? 4 : 4 + len;
    }
    if (p > end) throw new FrameError(`frame truncated at byte ${end}`);
    const r = Object.create(Record.prototype);
    r._src = batch;
    r._start = start;
    r._vs = vs;
    r._hs = hs;
    r._end = p;
    r._ts0 = ts;
    r.timestamp = ts;
    records[i] = r;
  }
  if (p !== end) throw new FrameError(`${end - p} trailing bytes after the frame at byte ${p}`);
  return records;
}

const names = new Map();

/** A header name's UTF-8 bytes (remembered: names repeat). */
function nameBytes(name) {
  let b = names.get(name);
  if (b === undefined) {
    if (names.size >= 1024) names.clear();
    b = utf8.encode(name);
    names.set(name, b);
  }
  return b;
}

function headersSize(list) {
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const v = list[i][1];
    n += 8 + nameBytes(list[i][0]).length + (v === null ? 0 : v.length);
  }
  return n;
}

/** An output frame being written: a growing buffer. */
export class OutFrame {
  constructor(capacity, count) {
    this.buf = new Uint8Array(Math.max(64, capacity));
    this.dv = new DataView(this.buf.buffer);
    this.buf[0] = 1;
    this.dv.setUint32(1, count, true);
    this.pos = 5;
  }

  grow(n) {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  /** Writes an ok status with these records. */
  ok(records) {
    if (this.pos + 5 > this.buf.length) this.grow(5);
    this.buf[this.pos] = 0;
    this.dv.setUint32(this.pos + 1, records.length, true);
    this.pos += 5;
    for (let i = 0; i < records.length; i++) this.record(records[i]);
  }

  /** Writes a rejected status. */
  rejected(code, message) {
    const c = utf8.encode(String(code));
    const m = utf8.encode(String(message));
    if (this.pos + 9 + c.length + m.length > this.buf.length) this.grow(9 + c.length + m.length);
    const { buf, dv } = this;
    let p = this.pos;
    buf[p] = 1;
    dv.setUint32(p + 1, c.length, true);
    buf.set(c, p + 5);
    p += 5 + c.length;
    dv.setUint32(p, m.length, true);
    buf.set(m, p + 4);
    this.pos = p + 4 + m.length;
  }

  record(r) {
    const src = r._src;
    const k = r._k;
    const v = r._v;
    const h = r._h;
    const hx = r._hx;
    // Unchanged: the input bytes as they are.
    if (src !== null && k === undefined && v === undefined && h === undefined && hx === undefined && r.timestamp === r._ts0) {
      const n = r._end - r._start;
      if (this.pos + n > this.buf.length) this.grow(n);
      this.buf.set(src.buf.subarray(r._start, r._end), this.pos);
      this.pos += n;
      return;
    }
    const ks = src === null ? 0 : r._start + 9;
    let size = 9;
    size += k !== undefined ? 4 + (k === null ? 0 : k.length) : r._vs - ks;
    size += v !== undefined ? 4 + (v === null ? 0 : v.length) : r._hs - r._vs;
    size += h !== undefined ? 4 + headersSize(h) : r._end - r._hs + (hx === undefined ? 0 : headersSize(hx));
    if (this.pos + size > this.buf.length) this.grow(size);
    const { buf, dv } = this;
    let p = this.pos;
    const ts = r.timestamp;
    if (ts === null) {
      dv.setUint32(p, 0, true);
      dv.setUint32(p + 4, 0, true);
      buf[p + 8] = 0;
    } else {
      dv.setBigInt64(p, BigInt(ts), true);
      buf[p + 8] = 1;
    }
    p += 9;
    if (k === undefined) {
      buf.set(src.buf.subarray(ks, r._vs), p);
      p += r._vs - ks;
    } else if (k === null) {
      dv.setUint32(p, NULL, true);
      p += 4;
    } else {
      dv.setUint32(p, k.length, true);
      buf.set(k, p + 4);
      p += 4 + k.length;
    }
    if (v === undefined) {
      buf.set(src.buf.subarray(r._vs, r._hs), p);
      p += r._hs - r._vs;
    } else if (v === null) {
      dv.setUint32(p, NULL, true);
      p += 4;
    } else {
      dv.setUint32(p, v.length, true);
      buf.set(v, p + 4);
      p += 4 + v.length;
    }
    let list = h;
    if (h === undefined) {
      const raw = src.dv.getUint32(r._hs, true);
      dv.setUint32(p, raw + (hx === undefined ? 0 : hx.length), true);
      buf.set(src.buf.subarray(r._hs + 4, r._end), p + 4);
      p += r._end - r._hs;
      list = hx;
    } else {
      dv.setUint32(p, h.length, true);
      p += 4;
    }
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const name = nameBytes(list[i][0]);
        const value = list[i][1];
        dv.setUint32(p, name.length, true);
        buf.set(name, p + 4);
        p += 4 + name.length;
        if (value === null) {
          dv.setUint32(p, NULL, true);
          p += 4;
        } else {
          dv.setUint32(p, value.length, true);
          buf.set(value, p + 4);
          p += 4 + value.length;
        }
      }
    }
    this.pos = p;
  }

  finish() {
    return this.buf.subarray(0, this.pos);
  }
}
