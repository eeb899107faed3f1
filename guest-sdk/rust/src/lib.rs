//! Write Sluice plugins in Rust.
//!
//! A plugin is a function from one [`Record`] to zero or more records, plus
//! one macro line that exports it as a WebAssembly component:
//!
//! ```
//! use sluice_sdk::{Emitter, Error, Record};
//!
//! fn uppercase(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
//!     let text = record.value_str()?.to_uppercase();
//!     out.emit(record.with_value(text));
//!     Ok(())
//! }
//! sluice_sdk::export_processor!(uppercase);
//!
//! # fn main() {
//! // Plugin logic is plain Rust: test it with `cargo test` on the host.
//! let out = sluice_sdk::testing::run(uppercase, Record::new(Some("k"), Some("hi"))).unwrap();
//! assert_eq!(out[0].value.as_deref(), Some(&b"HI"[..]));
//! # }
//! ```
//!
//! - [`Record`]: key, value, timestamp and headers; borrowed from the call
//!   batch until you change them.
//! - [`Emitter`]: where output records go.
//! - [`Error`]: returning one rejects the record (the pipeline's `rejected`
//!   policy applies). A panic is a trap: the host discards the instance.
//! - [`Processor`]: a stateful processor configured from the pipeline file,
//!   exported with `export_processor!(type MyProcessor)`.
//! - [`Aggregator`]: a keyed aggregation (the host stores the aggregates),
//!   exported with `export_aggregator!(type MyAggregator)`; [`Reducer`]:
//!   the same for a value combined with the next (`export_reducer!`).
//! - [`TimestampExtractor`]: event times for a source declared with
//!   `timestamp = "plugin"` (`export_extractor!`).
//! - [`Joiner`]: the value of a joined record from the pair of records a
//!   join matched, either side possibly absent (`export_joiner!(my_fn)`,
//!   `export_joiner!(json my_fn)` for JSON values, or
//!   `export_joiner!(type MyJoiner)`).
//! - [`state`]: task-local stores a processor declares (`stores = [...]`).
//! - [`log`]: log lines that the host prints with the plugin's name.
//! - [`testing`]: run a processor (or an aggregator, an extractor, a
//!   joiner) on the host target, through the same frame encoding the host
//!   uses.

mod aggregate;
mod extract;
mod join;
mod record;
mod runtime;

pub mod log;
pub mod state;
pub mod testing;

#[cfg(feature = "json")]
pub use aggregate::Aggregator;
pub use aggregate::Reducer;
pub use extract::TimestampExtractor;
pub use join::Joiner;
pub use record::{Config, Emitter, Error, Header, Record};
pub use runtime::Processor;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "record-processor",
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings",
        export_macro_name: "export_record_processor",
    });
}

#[doc(hidden)]
pub mod bindings_aggregator {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "record-aggregator",
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings_aggregator",
        export_macro_name: "export_record_aggregator",
    });
}

#[doc(hidden)]
pub mod bindings_extractor {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "timestamp-extractor",
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings_extractor",
        export_macro_name: "export_timestamp_extractor",
    });
}

#[doc(hidden)]
pub mod bindings_joiner {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "value-joiner",
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings_joiner",
        export_macro_name: "export_value_joiner",
    });
}

#[doc(hidden)]
pub mod __rt {
    pub mod join {
        #[cfg(feature = "json")]
        pub use crate::join::join_json;
        pub use crate::join::{guest_init, guest_join};
    }
    pub mod extract {
        pub use crate::extract::{guest_extract, guest_init};
    }
    pub use crate::runtime::{guest_init, guest_process};
    pub mod aggregate {
        #[cfg(feature = "json")]
        pub use crate::aggregate::AggregatorFold;
        pub use crate::aggregate::{ReducerFold, guest_add, guest_init, guest_merge};
    }
}

/// Exports a processor as the plugin's `sluice:plugin/processor@0.1.0`.
///
/// - `export_processor!(my_fn)` for a function
///   `fn(Record<'_>, &mut Emitter<'_>) -> Result<(), Error>`;
/// - `export_processor!(type MyProcessor)` for a type that implements
///   [`Processor`] (it gets the step's `config` table at init).
///
/// Use it once per plugin crate.
#[macro_export]
macro_rules! export_processor {
    (type $ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __SLUICE_PROCESSOR: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            #[allow(dead_code, reason = "only exported when built for wasm32")]
            struct __SluiceExport;
            impl $crate::bindings::exports::sluice::plugin::processor::Guest for __SluiceExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), $crate::bindings::exports::sluice::plugin::processor::Error> {
                    __SLUICE_PROCESSOR.with(|slot| $crate::__rt::guest_init(slot, config))
                }
                fn process(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings::exports::sluice::plugin::processor::Error> {
                    __SLUICE_PROCESSOR.with(|slot| $crate::__rt::guest_process(slot, &batch))
                }
            }
            // Export names such as `sluice:plugin/processor@0.1.0#process`
            // are only linkable into a wasm module.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::export_record_processor!(__SluiceExport with_types_in $crate::bindings);
        };
    };
    ($func:path) => {
        const _: () = {
            struct __SluiceFn;
            impl $crate::Processor for __SluiceFn {
                fn init(_: &$crate::Config) -> ::std::result::Result<Self, $crate::Error> {
                    ::std::result::Result::Ok(__SluiceFn)
                }
                fn process(
                    &mut self,
                    record: $crate::Record<'_>,
                    out: &mut $crate::Emitter<'_>,
                ) -> ::std::result::Result<(), $crate::Error> {
                    $func(record, out)
                }
            }
            $crate::export_processor!(type __SluiceFn);
        };
    };
}
