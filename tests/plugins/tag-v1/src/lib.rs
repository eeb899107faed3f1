//! Test plugin for swaps: every record passes through, tagged
//! `version=v1`, so that a test sees which version processed it.

const VERSION: &str = "v1";

include!("tag.rs");
