// @sluice/sdk: write Sluice plugins in JavaScript or TypeScript.
//
//   import { defineProcessor, Reject } from '@sluice/sdk';
//
//   export const processor = defineProcessor((record, emit) => {
//     const text = record.valueText();            // Reject('null-value' | 'bad-utf8')
//     if (text === '') throw new Reject('empty', 'nothing to shout');
//     emit(record.withValue(text.toUpperCase()));
//   });
//
// - A processor gets one record and emits zero or more records (with
//   `emit(record)`, or by returning a record or an array of records).
// - Throwing (or returning) a `Reject` rejects that record only: the
//   pipeline's `rejected` policy applies.
// - Any other exception is a bug: the call traps, the host discards the
//   instance, replays the batch record by record and applies the `trap`
//   policy to the record that traps.
// - `log` writes to the host's log; `store(name)` reaches a state store the
//   step declares (`stores = [...]`).
// - An aggregator (`export const aggregator = defineAggregator({ initial,
//   add, merge? })`) folds each key's records into a JSON aggregate that
//   the host stores; see defineAggregator.
//
// The SDK speaks the call-batch frame (wit/FRAME.md) so plugins never see it.
// Inside a component the WIT imports are bound by the entry that build.mjs
// generates; elsewhere (node tests) an in-memory host stands in, and
// `setHost` (re-exported by ./testing.js) substitutes another.

import { FrameError } from './frame.js';
import { OutFrame, Record, Reject, readBatch, textOf, toBytes } from './record.js';

export { Record, Reject, textOf, toBytes };

/** A state operation the host refused (`code` is the host's); a Reject, so
 * letting it escape `process` rejects the record. */
export class StateError extends Reject {
  constructor(code, message) {
    super(code, message);
    this.name = 'StateError';
  }
}

// ---------------------------------------------------------------------------
// Configuration

/** A step's `config` table: string keys and values (the last of a repeated key wins). */
export class Config extends Map {
  /** The value of `key` as a number, `fallback` when absent; Reject('bad-config') if not a number. */
  number(key, fallback) {
    const raw = this.get(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) {
      throw new Reject('bad-config', `config \`${key}\` = ${JSON.stringify(raw)}: not a number`);
    }
    return n;
  }

  /** The value of `key` as a boolean (true/false), `fallback` when absent. */
  boolean(key, fallback) {
    const raw = this.get(key);
    if (raw === undefined) return fallback;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw new Reject('bad-config', `config \`${key}\` = ${JSON.stringify(raw)}: not true or false`);
  }

  /** The value of `key`; Reject('bad-config') when absent. */
  require(key) {
    const raw = this.get(key);
    if (raw === undefined) throw new Reject('bad-config', `config \`${key}\` is required`);
    return raw;
  }
}

// ---------------------------------------------------------------------------
// The host: WIT imports, or stand-ins

/** An in-memory host, for node tests: log lines collected (and printed to
 * stderr unless `quiet`), every store exists. */
export function memoryHost({ quiet = false } = {}) {
  const stores = new Map();
  const logs = [];
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const table = (name) => {
    let t = stores.get(name);
    if (!t) stores.set(name, (t = new Map()));
    return t;
  };
  return {
    logs,
    stores,
    log(level, message) {
      logs.push({ level, message });
      if (!quiet) console.error(`[${level}] ${message}`);
    },
    state: {
      get(store, key) {
        const e = table(store).get(hex(key));
        return e ? e[1].slice() : undefined;
      },
      put(store, key, value) {
        table(store).set(hex(key), [key.slice(), value.slice()]);
      },
      delete(store, key) {
        table(store).delete(hex(key));
      },
      range(store, start, end, limit) {
        const lo = start ? hex(start) : null;
        const hi = end ? hex(end) : null;
        return [...table(store).entries()]
          .filter(([k]) => (lo === null || k >= lo) && (hi === null || k < hi))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .slice(0, limit)
          .map(([, [k, v]]) => [k.slice(), v.slice()]);
      },
    },
  };
}

let host = null;

function currentHost() {
  if (host === null) host = memoryHost();
  return host;
}

/**
 * Replaces the host: `{ log(level, message), state: { get, put, delete, range } }`
 * with the signatures of `sluice:plugin/log` and `sluice:plugin/state` (an
 * `err` thrown as an object with `payload: {code, message}`, or `{code, message}`).
 * Returns the previous one.
 */
export function setHost(next) {
  const previous = host;
  host = next;
  return previous;
}

// ---------------------------------------------------------------------------
// Logging

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

/** Log lines that the host prints with the plugin's name. */
export const log = {
  /** Logs `message` at `level` ('trace' | 'debug' | 'info' | 'warn' | 'error'). */
  log(level, message) {
    if (!LEVELS.includes(level)) throw new TypeError(`unknown log level ${level}`);
    currentHost().log(level, String(message));
  },
  trace: (m) => log.log('trace', m),
  debug: (m) => log.log('debug', m),
  info: (m) => log.log('info', m),
  warn: (m) => log.log('warn', m),
  error: (m) => log.log('error', m),
};

// ---------------------------------------------------------------------------
// State

/** Bytes from an import as a Uint8Array of this realm (the component's
 * glue makes typed arrays that fail `instanceof Uint8Array` here). */
function own(v) {
  if (v === undefined || v === null) return null;
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function stateCall(op, f) {
  try {
    return f();
  } catch (e) {
    const p = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
    if (p && typeof p === 'object' && typeof p.code === 'string') {
      throw new StateError(p.code, String(p.message ?? p.code));
    }
    throw e;
  }
}

/**
 * A state store the step declares (`stores = ["name"]`): task-local, backed
 * by a changelog; writes are kept only if the call batch succeeds.
 * Keys and values: a string (UTF-8), bytes, or anything else as JSON.
 * A refusal by the host throws a StateError (a Reject).
 */
export class Store {
  constructor(name) {
    this.name = String(name);
  }

  /** The value of `key` as bytes, or null. */
  get(key) {
    return own(stateCall('get', () => currentHost().state.get(this.name, toBytes(key))));
  }

  /** The value of `key` as UTF-8 text, or null. */
  getText(key) {
    const v = this.get(key);
    return v === null ? null : textOf(v, `state value in \`${this.name}\``);
  }

  /** The value of `key` parsed as JSON, or null when absent; Reject('bad-json') if it is not JSON. */
  getJson(key) {
    const v = this.getText(key);
    if (v === null) return null;
    try {
      return JSON.parse(v);
    } catch (e) {
      throw new Reject('bad-json', `state value in \`${this.name}\`: ${e.message}`);
    }
  }

  /** Sets `key` to `value`. */
  put(key, value) {
    const v = toBytes(value);
    if (v === null) throw new TypeError('a state value cannot be null (use delete)');
    stateCall('put', () => currentHost().state.put(this.name, toBytes(key), v));
  }

  /** Removes `key`. */
  delete(key) {
    stateCall('delete', () => currentHost().state.delete(this.name, toBytes(key)));
  }

  /**
   * Entries with start <= key < end (an absent bound is open), in key
   * order, at most `limit` (default: all): an array of [key, value] bytes.
   */
  range({ start = null, end = null, limit = 0xffffffff } = {}) {
    const s = start === null ? undefined : toBytes(start);
    const e = end === null ? undefined : toBytes(end);
    const entries = stateCall('range', () => currentHost().state.range(this.name, s, e, limit >>> 0));
    return Array.from(entries, ([k, v]) => [own(k), own(v)]);
  }
}

/** The state store `name` (as declared in the step's `stores`). */
export function store(name) {
  return new Store(name);
}

// ---------------------------------------------------------------------------
// Processors

const DEFINED = Symbol.for('sluice.processor');

/** Thrown out of an export to return `err(error)` (componentize-js and jco
 * read an own `payload` property as the error of a `result`). */
class CallError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'CallError';
    this.payload = { code, message };
  }
}

function describe(e) {
  let text;
  if (e instanceof Error || (e && typeof e === 'object' && 'stack' in e && 'message' in e)) {
    const stack = String(e.stack ?? '').split('\n').filter(Boolean);
    const shown = stack.slice(0, 12);
    if (stack.length > shown.length) shown.push(`… ${stack.length - shown.length} more frames`);
    text = `${e.name ?? 'Error'}: ${e.message}${shown.length ? '\n' + shown.join('\n') : ''}`;
  } else {
    try {
      text = `a non-Error value was thrown: ${typeof e === 'string' ? e : JSON.stringify(e)}`;
    } catch {
      text = `a non-Error value was thrown: ${String(e)}`;
    }
  }
  return text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
}

/** What `trap` makes: an Error that escapes the export (no `payload`). */
class Trap extends Error {}

/**
 * Makes an exception that is not a Reject trap: logs it, then throws a
 * fresh Error (no `payload`), which the component's export glue rethrows
 * instead of returning it as `err`, so the call traps (`unreachable`).
 */
function trap(where, e) {
  const text = `${where} threw (a trap): ${describe(e)}`;
  try {
    currentHost().log('error', text);
  } catch {
    // Logging is best effort here.
  }
  const t = new Trap(text);
  t.name = 'Trap';
  t.cause = e;
  return t;
}

function safeJson(v) {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function collect(out, returned) {
  if (returned instanceof Reject) throw returned;
  if (typeof returned.then === 'function') {
    throw new TypeError('process must not be async (return records, not a promise)');
  }
  if (Array.isArray(returned)) {
    for (const r of returned) out.push(Record.from(r));
  } else {
    out.push(Record.from(returned));
  }
}

/**
 * Runs a plugin's `init` (when it has one) with `this` = `self` and the
 * step's config: a Reject, thrown or returned, is the call's error; any
 * other exception, or a promise (init must not be async), is a trap.
 */
function runInit(userInit, self, pairs) {
  if (!userInit) return;
  const config = new Config(pairs ?? []);
  let made;
  try {
    made = userInit.call(self, config);
  } catch (e) {
    if (e instanceof Reject) throw new CallError(e.code, e.message);
    throw trap('init', e);
  }
  if (made instanceof Reject) throw new CallError(made.code, made.message);
  if (made && typeof made.then === 'function') {
    throw trap('init', new TypeError('init must not be async'));
  }
}

/**
 * Defines a processor, the value a plugin exports as `processor`:
 *
 *   export const processor = defineProcessor((record, emit) => { ... });
 *   export const processor = defineProcessor({
 *     init(config) { ... },               // optional, once, with the step's config (a Config)
 *     process(record, emit) { ... },
 *   });
 *
 * `process` emits with `emit(record)` or returns a record, an array of
 * records or nothing; a thrown or returned `Reject` rejects the record.
 * `init` and `process` are called with `this` = the object given, so init
 * may keep what it reads from the config on `this` (or in module variables).
 * Without `init`, or before it, the config is empty.
 *
 * The result is the `sluice:plugin/processor` export: `{ init(pairs), process(frame) }`.
 */
export function defineProcessor(spec) {
  if (spec && spec[DEFINED]) return spec;
  const userInit = typeof spec === 'function' ? null : spec?.init;
  const userProcess = typeof spec === 'function' ? spec : spec?.process;
  if (typeof userProcess !== 'function') {
    throw new TypeError('defineProcessor takes a function (record, emit) or { init?, process }');
  }
  const self = typeof spec === 'function' ? undefined : spec;
  let ready = false;

  function init(pairs) {
    runInit(userInit, spec, pairs);
    ready = true;
  }

  // One emit function and one list of pending outputs for all records.
  const pending = [];
  const emit = (r) => {
    pending.push(Record.from(r));
  };

  function process(batch) {
    if (!ready) init([]);
    let records;
    try {
      records = readBatch(batch);
    } catch (e) {
      if (e instanceof FrameError) throw new CallError('bad-frame', e.message);
      throw trap('decoding the input frame', e);
    }
    const out = new OutFrame(batch.length + records.length * 8 + 16, records.length);
    for (let i = 0; i < records.length; i++) {
      pending.length = 0;
      try {
        const returned = userProcess.call(self, records[i], emit);
        if (returned !== undefined && returned !== null) collect(pending, returned);
      } catch (e) {
        pending.length = 0;
        if (e instanceof Reject) {
          out.rejected(e.code, e.message);
          continue;
        }
        // A header name that is not UTF-8 shows when the plugin reads it.
        if (e instanceof FrameError) throw new CallError('bad-frame', e.message);
        throw trap('process', e);
      }
      out.ok(pending);
    }
    pending.length = 0;
    return out.finish();
  }

  return { init, process, [DEFINED]: true };
}

// ---------------------------------------------------------------------------
// Aggregators

const DEFINED_AGGREGATOR = Symbol.for('sluice.aggregator');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

/** A key as a Map key: null, or its bytes as a string (one char per byte). */
function keyId(key) {
  if (key === null) return null;
  let s = '';
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]);
  return s;
}

/** A stored aggregate: JSON bytes to a value; Reject('bad-aggregate'). */
function decodeAggregate(bytes) {
  try {
    return JSON.parse(strictUtf8.decode(bytes));
  } catch (e) {
    throw new Reject('bad-aggregate', `the stored aggregate does not decode: ${e.message}`);
  }
}

/** An aggregate to JSON bytes; Reject('bad-json') when it cannot be JSON
 * (a BigInt, a cycle); undefined (add forgot to return it) traps. */
function encodeAggregate(where, aggregate) {
  if (aggregate instanceof Reject) throw aggregate;
  if (aggregate && typeof aggregate.then === 'function') {
    throw trap(where, new TypeError(`${where} must not be async (return the aggregate, not a promise)`));
  }
  let json;
  try {
    json = JSON.stringify(aggregate);
  } catch (e) {
    throw new Reject('bad-json', `the aggregate is not JSON: ${e.message}`);
  }
  if (json === undefined) {
    throw trap(where, new TypeError(`${where} returned ${typeof aggregate === 'undefined' ? 'nothing' : `a ${typeof aggregate}`}: it must return the new aggregate`));
  }
  return utf8.encode(json);
}

/** Nothing decoded yet in a key's slot. */
const UNSET = Symbol('unset');

/**
 * Defines an aggregator, the value a plugin exports as `aggregator`
 * (instead of a `processor`): it folds the records of one key into an
 * aggregate, which the host stores (with a changelog) and sends downstream.
 *
 *   export const aggregator = defineAggregator({
 *     init(config) { ... },               // optional, once, with the step's config (a Config)
 *     initial(key) { return { count: 0 }; },       // the aggregate of a key that has none yet
 *     add(aggregate, record) { return { count: aggregate.count + 1 }; },
 *     merge(key, a, b) { return { count: a.count + b.count }; },  // optional (session windows)
 *   });
 *
 * Aggregates are stored as JSON, so they are plain data (objects, arrays,
 * numbers, strings, booleans, null). `add` returns the aggregate after the
 * record (it may change the one it gets and return it); a thrown or
 * returned `Reject` rejects the record and leaves the key's aggregate as it
 * was. `merge` joins two aggregates of one key (`a` is the earlier); without
 * it, a merge is refused with `merge-unsupported`. Keys are bytes
 * (`Uint8Array`) or null. The methods are called with `this` = the object
 * given (an instance of a class with these methods will do); any other
 * exception is a bug and traps, as in a processor.
 *
 * The result is the `sluice:plugin/aggregator` export:
 * `{ init(pairs), add(aggregates, batch), merge(key, a, b) }`.
 */
export function defineAggregator(spec) {
  if (spec && spec[DEFINED_AGGREGATOR]) return spec;
  if (spec === null || typeof spec !== 'object' || typeof spec.initial !== 'function' || typeof spec.add !== 'function') {
    throw new TypeError('defineAggregator takes { init?, initial(key), add(aggregate, record), merge? }');
  }
  for (const name of ['init', 'merge']) {
    if (spec[name] !== undefined && typeof spec[name] !== 'function') {
      throw new TypeError(`defineAggregator: \`${name}\` is a ${typeof spec[name]}, not a function`);
    }
  }
  let ready = false;

  function init(pairs) {
    runInit(spec.init, spec, pairs);
    ready = true;
  }

  function read(frame, what) {
    try {
      return readBatch(frame);
    } catch (e) {
      if (e instanceof FrameError) throw new CallError('bad-frame', `${what}: ${e.message}`);
      throw trap(`decoding ${what}`, e);
    }
  }

  function add(aggregates, batch) {
    if (!ready) init([]);
    // Per key: the last accepted aggregate, encoded (null: none yet), and
    // its decoded value while it is at hand. `add` takes the value out, so
    // a rejection falls back to the encoded form, whatever add changed.
    const current = new Map();
    for (const r of read(aggregates, 'the aggregates frame')) {
      current.set(keyId(r.key), { bytes: r.value, value: UNSET });
    }
    const records = read(batch, 'the batch frame');
    const out = new OutFrame(batch.length + records.length * 32 + 16, records.length);
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const key = record.key;
      const id = keyId(key);
      let slot = current.get(id);
      if (slot === undefined) current.set(id, (slot = { bytes: null, value: UNSET }));
      let bytes;
      let next;
      try {
        let aggregate = slot.value;
        slot.value = UNSET;
        if (aggregate === UNSET) {
          aggregate = slot.bytes !== null ? decodeAggregate(slot.bytes) : spec.initial(key);
        }
        next = spec.add(aggregate, record);
        bytes = encodeAggregate('add', next);
      } catch (e) {
        if (e instanceof Reject) {
          out.rejected(e.code, e.message);
          continue;
        }
        if (e instanceof FrameError) throw new CallError('bad-frame', e.message);
        if (e instanceof Trap) throw e;
        throw trap('add', e);
      }
      slot.bytes = bytes;
      slot.value = next;
      out.ok([new Record({ key, value: bytes })]);
    }
    return out.finish();
  }

  function merge(key, a, b) {
    if (!ready) init([]);
    try {
      const left = decodeAggregate(own(a));
      const right = decodeAggregate(own(b));
      if (!spec.merge) {
        throw new Reject('merge-unsupported', 'this aggregator does not implement `merge`');
      }
      return encodeAggregate('merge', spec.merge(own(key), left, right));
    } catch (e) {
      if (e instanceof Reject) throw new CallError(e.code, e.message);
      if (e instanceof Trap) throw e;
      throw trap('merge', e);
    }
  }

  return { init, add, merge, [DEFINED_AGGREGATOR]: true };
}

/** @internal Used by the entry that build.mjs generates. */
export const __sluice = {
  setHost,
  /** Sends console output (which goes nowhere in a component without
   * stdio) to the host's log: log/info → info, debug, warn, error. */
  routeConsole() {
    const line = (args) =>
      args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? describe(a) : safeJson(a))).join(' ');
    const to = (level) => (...args) => currentHost().log(level, line(args));
    globalThis.console = {
      ...globalThis.console,
      log: to('info'),
      info: to('info'),
      debug: to('debug'),
      trace: to('trace'),
      warn: to('warn'),
      error: to('error'),
    };
  },
  /** A host for the aggregator world, which imports only `log`: any
   * state call is refused (a StateError, `no-state`). */
  logOnlyHost(log) {
    const refuse = () => {
      throw { code: 'no-state', message: 'an aggregator has no state stores (the host keeps its aggregates)' };
    };
    return { log, state: { get: refuse, put: refuse, delete: refuse, range: refuse } };
  },
  /** The aggregator export of a plugin module: its `aggregator`, else its default export. */
  aggregatorOf(mod) {
    const a = mod.aggregator ?? mod.default;
    if (a === undefined) {
      throw new TypeError('the plugin exports neither `aggregator` nor a default export');
    }
    return defineAggregator(a);
  },
  /** The processor export of a plugin module: its `processor`, else its default export. */
  processorOf(mod) {
    const p = mod.processor ?? mod.default;
    if (p === undefined) {
      throw new TypeError('the plugin exports neither `processor` nor a default export');
    }
    return defineProcessor(p);
  },
};
