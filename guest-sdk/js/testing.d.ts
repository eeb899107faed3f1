// Types of @sluice/sdk/testing (testing.js).
import type { MemoryHost, Host, Record, RecordFields, Reject, ProcessorExport, ProcessorSpec, ProcessFn, AggregatorExport, AggregatorSpec } from './index.js';

export { memoryHost, setHost } from './index.js';

export type AnyProcessor = ProcessorExport | ProcessorSpec | ProcessFn;
export interface RunOptions {
  /** Passed to init first. */
  config?: { [key: string]: string | number | boolean } | Array<[string, string]>;
}

/** Installs a fresh in-memory host (empty stores, logs collected) and returns it. */
export function useMemoryHost(options?: { quiet?: boolean }): MemoryHost;
/** One call batch through the frames: per record, its outputs or its Reject. A trap throws. */
export function runBatch(processor: AnyProcessor, records: Array<Record | RecordFields>, options?: RunOptions): Array<Record[] | Reject>;
/** One record: its outputs; throws its Reject. */
export function run(processor: AnyProcessor, record: Record | RecordFields, options?: RunOptions): Record[];

export interface AggregatorRunOptions<A = any> extends RunOptions {
  /** Aggregates the keys start from (others start from `initial`); bytes are passed as they are. */
  aggregates?: { [key: string]: A | Uint8Array } | Array<[string | Uint8Array | null, A | Uint8Array]>;
}
export type AnyAggregator<A> = AggregatorExport<A> | AggregatorSpec<A>;
/** One `add` call through the frames: per record, the key's aggregate after it (as the JSON written decodes), or its Reject. A trap throws; an `err` throws a Reject. */
export function runAggregator<A>(aggregator: AnyAggregator<A>, records: Array<Record | RecordFields>, options?: AggregatorRunOptions<A>): Array<A | Reject>;
/** A `merge` call through the bytes the host passes: the merged aggregate; a refusal throws a Reject. */
export function runMerge<A>(aggregator: AnyAggregator<A>, a: A, b: A, options?: RunOptions & { key?: string | Uint8Array | null }): A;
