//! Test plugin for swaps: every record passes through, tagged
//! `version=v2`, so that a test sees which version processed it.

const VERSION: &str = "v2";

include!("../../tag-v1/src/tag.rs");
