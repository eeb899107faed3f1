//! Joins: the records of two streams or tables matched by key, each
//! matched pair made one record by a value joiner.
//!
//! - [`joiner`]: the value joiner ([`joiner::ValueJoiner`]): a built-in
//!   or a `value-joiner` plugin, called a call batch of pairs at a time;
//!   the joined record keeps the headers of both sides;
//! - [`built_in`]: the joiners that need no plugin, `merge` and `pair`;
//! - [`results`]: the joiner call and the output every join shares;
//! - [`stored`]: records and keys as joins keep them in their stores;
//! - [`stream_table`]: the stream–table join (inner, left);
//! - [`stream_stream`]: the windowed stream–stream join (inner, left, outer);
//! - [`stream_global`]: the stream–global-table join (inner, left), by the
//!   record's key, a field of its value, or a [`key_plugin`];
//! - [`table_key`]: the key a record looks a table up by (its own, or a
//!   field of its value);
//! - [`table_table`]: the table–table join (inner, left, outer);
//! - [`foreign_key`]: the foreign-key table–table join (inner, left), a
//!   protocol between the two tables' tasks.

pub mod built_in;
pub mod foreign_key;
pub mod joiner;
pub mod key_plugin;
pub mod results;
pub mod stored;
pub mod stream_global;
pub mod stream_stream;
pub mod stream_table;
pub mod table_key;
pub mod table_table;
#[cfg(test)]
mod testing;

use crate::operator::{StepCtx, unapplied};
use crate::record::RecordRef;

/// The records of a step with two inputs, in arrival order (their index
/// in the batch), each marked true if it came from the first input, less
/// those whose effects the step's `store` already holds (restored).
pub fn in_arrival_order<'r>(
    inputs: Vec<(usize, RecordRef<'r>)>,
    store: usize,
    cx: &StepCtx<'_, '_>,
) -> Vec<(usize, bool, RecordRef<'r>)> {
    let firsts = cx.per_input.first().copied().unwrap_or(0);
    let mut all: Vec<(usize, bool, RecordRef<'r>)> = (inputs.iter().enumerate())
        .map(|(i, &(origin, r))| (origin, i < firsts, r))
        .collect();
    all.sort_by_key(|&(origin, _, _)| origin);
    let live: std::collections::HashSet<usize> = (unapplied(&[store], inputs, cx).into_iter())
        .map(|(o, _)| o)
        .collect();
    all.retain(|(origin, _, _)| live.contains(origin));
    all
}
