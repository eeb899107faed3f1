// Types of @sluice/sdk/testing (testing.js).
import type { MemoryHost, Host, Record, RecordFields, Reject, ProcessorExport, ProcessorSpec, ProcessFn } from './index.js';

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
