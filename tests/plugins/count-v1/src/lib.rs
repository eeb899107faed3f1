//! Test plugin for swaps: a per-key count that records which version
//! counted last. Swapped for its other version, the count goes on from the
//! stored aggregate.

const VERSION: &str = "v1";

include!("count.rs");
