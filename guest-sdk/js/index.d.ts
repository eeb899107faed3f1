// Types of @sluice/sdk (index.js). Used by editors and `tsc --noEmit`;
// the build (esbuild) strips types without checking them.

/** Something that becomes bytes: a string (UTF-8), bytes, or anything else as JSON. */
export type BytesLike = string | Uint8Array | ArrayBufferView | ArrayBuffer | number | boolean | object;

/** A refusal of one record (or, from `init`, of the configuration). */
export class Reject extends Error {
  constructor(code: string, message?: string);
  /** Short and machine-readable, for example `bad-json`. */
  readonly code: string;
}

/** A state operation the host refused; `code` is the host's (`unknown-store`, `read-only`, …). */
export class StateError extends Reject {}

export interface RecordFields {
  key?: BytesLike | null;
  value?: BytesLike | null;
  /** UTC milliseconds; null or absent keeps the input record's timestamp. */
  timestamp?: number | Date | null;
  headers?: Array<[string, BytesLike | null]> | { [name: string]: BytesLike | null } | Map<string, BytesLike | null>;
}

/** One Kafka record. The `with…` methods return a changed copy. */
export class Record {
  constructor(fields?: RecordFields);
  static from(r: Record | RecordFields): Record;
  /** Null for a null key. */
  key: Uint8Array | null;
  /** Null for a tombstone. */
  value: Uint8Array | null;
  /** UTC milliseconds; on output, null keeps the input record's. */
  timestamp: number | null;
  /** In order; names may repeat; a value may be null. */
  headers: Array<[string, Uint8Array | null]>;
  /** The key as text (null for a null key); Reject `bad-utf8`. */
  keyText(): string | null;
  /** The value as text; Reject `null-value` or `bad-utf8`. */
  valueText(): string;
  /** The value parsed as JSON; Reject `bad-json`. */
  valueJson<T = any>(): T;
  /** The last header with this name: bytes, null (a null value), or undefined (absent). */
  header(name: string): Uint8Array | null | undefined;
  /** The last header with this name as text, or undefined. */
  headerText(name: string): string | undefined;
  withKey(key: BytesLike | null): Record;
  /** A string is UTF-8 text, bytes are kept, null is a tombstone, anything else is JSON. */
  withValue(value: BytesLike | null): Record;
  /** The value serialized as JSON (a string too). */
  withJson(value: unknown): Record;
  withTimestamp(timestamp: number | Date | null): Record;
  /** Appends a header (`3` becomes "3"). */
  withHeader(name: string, value: BytesLike | null): Record;
  withoutHeader(name: string): Record;
}

/** A step's `config` table (string keys and values). */
export class Config extends Map<string, string> {
  /** A number, `fallback` when absent; Reject `bad-config` when not a number. */
  number(key: string, fallback?: number): number;
  boolean(key: string, fallback?: boolean): boolean;
  /** The value; Reject `bad-config` when absent. */
  require(key: string): string;
}

export type Emit = (record: Record | RecordFields) => void;
export type ProcessResult = void | null | undefined | Record | RecordFields | Array<Record | RecordFields> | Reject;
export type ProcessFn<This = unknown> = (this: This, record: Record, emit: Emit) => ProcessResult;

export interface ProcessorSpec {
  /** Once per instance, before the first batch. Throw a Reject to refuse the config. */
  init?(this: this, config: Config): void;
  process(this: this, record: Record, emit: Emit): ProcessResult;
  [more: string]: any;
}

/** The `sluice:plugin/processor@0.1.0` export. */
export interface ProcessorExport {
  init(config: Array<[string, string]>): void;
  process(batch: Uint8Array): Uint8Array;
}

/** Defines the processor a plugin exports: `export const processor = defineProcessor(...)`. */
export function defineProcessor<S extends ProcessorSpec>(spec: S | ProcessFn): ProcessorExport;

/** Data that survives JSON: what an aggregate is made of. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * An aggregator: folds the records of one key into an aggregate `A`, which
 * the host stores as JSON (so `A` is plain data) and sends downstream.
 */
export interface AggregatorSpec<A> {
  // (No `this` parameters here: they would stop TypeScript from inferring
  // `A` from `initial`; `this` in the methods is the spec, whose other
  // properties are `any`.)
  /** Once per instance, before the first batch. Throw a Reject to refuse the config. */
  init?(config: Config): void;
  /** The aggregate of a key that has none yet (the key: bytes, or null). */
  initial(key: Uint8Array | null): A;
  /** The aggregate after `record`. Throw (or return) a Reject to reject the record: the key's aggregate stays as it was. */
  add(aggregate: A, record: Record): A | Reject;
  /** Two aggregates of one key as one (`a` is the earlier); session windows need it. Without it, merges are refused (`merge-unsupported`). */
  merge?(key: Uint8Array | null, a: A, b: A): A;
  [more: string]: any;
}

declare const aggregateType: unique symbol;

/** The `sluice:plugin/aggregator@0.1.0` export (of aggregates `A`). */
export interface AggregatorExport<A = unknown> {
  /** Types only: the aggregate. */
  readonly [aggregateType]?: A;
  init(config: Array<[string, string]>): void;
  add(aggregates: Uint8Array, batch: Uint8Array): Uint8Array;
  merge(key: Uint8Array | null | undefined, a: Uint8Array, b: Uint8Array): Uint8Array;
}

/** Defines the aggregator a plugin exports: `export const aggregator = defineAggregator({ initial, add })`. */
export function defineAggregator<A>(spec: AggregatorSpec<A>): AggregatorExport<A>;

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const log: {
  log(level: Level, message: string): void;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** A state store the step declares (`stores = [...]`). A host refusal throws a StateError. */
export class Store {
  constructor(name: string);
  readonly name: string;
  get(key: BytesLike): Uint8Array | null;
  getText(key: BytesLike): string | null;
  getJson<T = any>(key: BytesLike): T | null;
  put(key: BytesLike, value: BytesLike): void;
  delete(key: BytesLike): void;
  /** start <= key < end (absent: open), in key order, at most `limit` (default: all). */
  range(bounds?: { start?: BytesLike | null; end?: BytesLike | null; limit?: number }): Array<[Uint8Array, Uint8Array]>;
}
export function store(name: string): Store;

export function toBytes(v: BytesLike | null | undefined): Uint8Array | null;
export function textOf(bytes: Uint8Array, what?: string): string;

export interface Host {
  log(level: Level, message: string): void;
  state: {
    get(store: string, key: Uint8Array): Uint8Array | undefined;
    put(store: string, key: Uint8Array, value: Uint8Array): void;
    delete(store: string, key: Uint8Array): void;
    range(store: string, start: Uint8Array | undefined, end: Uint8Array | undefined, limit: number): Array<[Uint8Array, Uint8Array]>;
  };
}
export interface MemoryHost extends Host {
  logs: Array<{ level: Level; message: string }>;
  stores: Map<string, Map<string, [Uint8Array, Uint8Array]>>;
}
export function memoryHost(options?: { quiet?: boolean }): MemoryHost;
export function setHost(host: Host | null): Host | null;
