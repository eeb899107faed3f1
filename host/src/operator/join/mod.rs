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
//!   record's key or a field of its value;
//! - [`table_table`]: the table–table join (inner, left, outer).
//!
//! Foreign-key joins are to come, in a file of their
//! own.

pub mod built_in;
pub mod joiner;
pub mod results;
pub mod stored;
pub mod stream_global;
pub mod stream_stream;
pub mod stream_table;
pub mod table_table;
#[cfg(test)]
mod testing;
