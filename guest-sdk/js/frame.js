// The call-batch frame of `sluice:plugin@0.1.0` (see wit/FRAME.md).
//
// All integers are little-endian. `bytes` is a u32 length and that many
// bytes, 0xFFFF_FFFF meaning null; `string` is a non-null `bytes` of UTF-8.
//
// A record here is a plain object:
//   { key: Uint8Array|null, value: Uint8Array|null,
//     timestamp: number|null, headers: Array<[string, Uint8Array|null]> }
// Decoded bytes are views into the frame (nothing is copied).

export const VERSION = 1;
const NULL = 0xffffffff;
const FLAG_TIMESTAMP = 1;
const STATUS_OK = 0;
const STATUS_REJECTED = 1;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A frame that does not follow the layout. */
export class FrameError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Reads a frame in place. */
export class Reader {
  /** @param {Uint8Array} buf */
  constructor(buf) {
    if (!(buf instanceof Uint8Array)) {
      if (ArrayBuffer.isView(buf)) buf = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      else if (buf instanceof ArrayBuffer) buf = new Uint8Array(buf);
      else throw new FrameError(`a frame is bytes, not ${Object.prototype.toString.call(buf)}`);
    }
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
  }

  /** Opens a frame: checks the version and returns the count. */
  header() {
    const version = this.u8();
    if (version !== VERSION) {
      throw new FrameError(`frame version ${version} is not supported (expected ${VERSION})`);
    }
    return this.u32();
  }

  need(n) {
    if (this.pos + n > this.buf.length) {
      throw new FrameError(`frame truncated at byte ${this.pos}`);
    }
  }

  u8() {
    this.need(1);
    return this.buf[this.pos++];
  }

  u32() {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i64() {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return Number(v);
  }

  bytes() {
    const len = this.u32();
    if (len === NULL) return null;
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string() {
    const at = this.pos;
    const bytes = this.bytes();
    if (bytes === null) throw new FrameError(`string at byte ${at} is null`);
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new FrameError(`string at byte ${at} is not valid UTF-8`);
    }
  }

  record() {
    const ts = this.i64();
    const at = this.pos;
    const flags = this.u8();
    if (flags & ~FLAG_TIMESTAMP) {
      throw new FrameError(
        `record flags 0x${flags.toString(16).padStart(2, '0')} at byte ${at} set reserved bits (only bit 0, the timestamp, is defined)`,
      );
    }
    const key = this.bytes();
    const value = this.bytes();
    const count = this.u32();
    const headers = [];
    for (let i = 0; i < count; i++) {
      const name = this.string();
      headers.push([name, this.bytes()]);
    }
    return { key, value, timestamp: flags & FLAG_TIMESTAMP ? ts : null, headers };
  }

  /** Reads one status of an output frame: {ok: records} or {rejected: {code, message}}. */
  status() {
    const tag = this.u8();
    if (tag === STATUS_OK) {
      const n = this.u32();
      const records = [];
      for (let i = 0; i < n; i++) records.push(this.record());
      return { ok: records };
    }
    if (tag === STATUS_REJECTED) {
      const code = this.string();
      return { rejected: { code, message: this.string() } };
    }
    throw new FrameError(`unknown record status ${tag}`);
  }

  /** Fails unless every byte was read. */
  end() {
    if (this.pos !== this.buf.length) {
      throw new FrameError(`${this.buf.length - this.pos} trailing bytes after the frame at byte ${this.pos}`);
    }
  }
}

/** Writes a frame into a buffer that grows as needed. */
export class Writer {
  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v) {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }

  u32(v) {
    this.reserve(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  i64(v) {
    this.reserve(8);
    this.view.setBigInt64(this.pos, BigInt(v), true);
    this.pos += 8;
  }

  /** @param {Uint8Array|null} b */
  bytes(b) {
    if (b === null || b === undefined) return this.u32(NULL);
    if (b.length >= NULL) throw new RangeError('a field of 4 GiB or more does not fit a frame');
    this.u32(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s) {
    this.bytes(utf8.encode(String(s)));
  }

  /** Writes a version byte and a count. */
  header(count) {
    this.u8(VERSION);
    this.u32(count);
  }

  record(r) {
    const hasTs = r.timestamp !== null && r.timestamp !== undefined;
    this.i64(hasTs ? r.timestamp : 0);
    this.u8(hasTs ? FLAG_TIMESTAMP : 0);
    this.bytes(r.key);
    this.bytes(r.value);
    const headers = r.headers ?? [];
    this.u32(headers.length);
    for (const [name, value] of headers) {
      this.string(name);
      this.bytes(value);
    }
  }

  ok(records) {
    this.u8(STATUS_OK);
    this.u32(records.length);
    for (const r of records) this.record(r);
  }

  rejected(code, message) {
    this.u8(STATUS_REJECTED);
    this.string(code);
    this.string(message);
  }

  /** The frame written so far. */
  finish() {
    return this.buf.subarray(0, this.pos);
  }
}

/** Decodes a whole input frame into records. */
export function decodeInput(frame) {
  const r = new Reader(frame);
  const count = r.header();
  const records = [];
  for (let i = 0; i < count; i++) records.push(r.record());
  r.end();
  return records;
}

/** Encodes records as an input frame. */
export function encodeInput(records) {
  const w = new Writer();
  w.header(records.length);
  for (const r of records) w.record(r);
  return w.finish();
}

/** Decodes an output frame into statuses: {ok: records} or {rejected: {code, message}}. */
export function decodeOutput(frame) {
  const r = new Reader(frame);
  const count = r.header();
  const statuses = [];
  for (let i = 0; i < count; i++) statuses.push(r.status());
  r.end();
  return statuses;
}

/** Encodes statuses ({ok: records} or {rejected: {code, message}}) as an output frame. */
export function encodeOutput(statuses) {
  const w = new Writer();
  w.header(statuses.length);
  for (const s of statuses) {
    if (s.rejected) w.rejected(s.rejected.code, s.rejected.message);
    else w.ok(s.ok);
  }
  return w.finish();
}
