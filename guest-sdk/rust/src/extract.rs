//! Timestamp extractors: the event time of each record, for a source
//! declared with `timestamp = "plugin"`.
//!
//! ```
//! use sluice_sdk::{Config, Error, Record, TimestampExtractor};
//!
//! /// Event time from a `ts=<ms>` header.
//! struct FromHeader;
//!
//! impl TimestampExtractor for FromHeader {
//!     fn init(_: &Config) -> Result<Self, Error> {
//!         Ok(FromHeader)
//!     }
//!     fn extract(&mut self, record: &Record<'_>) -> Option<i64> {
//!         std::str::from_utf8(record.header("ts")?).ok()?.parse().ok()
//!     }
//! }
//! sluice_sdk::export_extractor!(type FromHeader);
//!
//! # fn main() {
//! let times = sluice_sdk::testing::run_extractor::<FromHeader>(&[], vec![
//!     Record::new(Some("k"), Some("v")).with_header("ts", "1700000000000"),
//!     Record::new(Some("k"), Some("v")),
//! ]).unwrap();
//! assert_eq!(times, vec![Some(1_700_000_000_000), None]);
//! # }
//! ```

use std::cell::RefCell;

use sluice_frame::Reader;

use crate::bindings_extractor::exports::sluice::plugin::extractor::Error as WitError;
use crate::{Config, Error, Record};

/// Finds records' event times. Export it with
/// `export_extractor!(type MyExtractor)`.
pub trait TimestampExtractor: Sized + 'static {
    /// Builds the extractor from the source's `timestamp-config` table.
    fn init(config: &Config) -> Result<Self, Error>;

    /// The record's event time in UTC milliseconds, or `None` when it has
    /// no valid one (the source's `invalid-timestamp` policy applies).
    fn extract(&mut self, record: &Record<'_>) -> Option<i64>;
}

/// Runs an `extract` call: one time per record, -1 for none.
pub(crate) fn extract_batch<E: TimestampExtractor>(
    extractor: &mut E,
    batch: &[u8],
) -> Result<Vec<i64>, Error> {
    let bad_frame = |e: sluice_frame::FrameError| Error::new("bad-frame", e.to_string());
    let (mut reader, count) = Reader::input(batch).map_err(bad_frame)?;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let r = reader.record().map_err(bad_frame)?;
        let time = Record::from_frame(&r)
            .ok()
            .and_then(|record| extractor.extract(&record))
            .filter(|t| *t >= 0);
        out.push(time.unwrap_or(-1));
    }
    Ok(out)
}

fn to_wit(e: Error) -> WitError {
    WitError {
        code: e.code,
        message: e.message,
    }
}

#[doc(hidden)]
pub fn guest_init<E: TimestampExtractor>(
    slot: &RefCell<Option<E>>,
    config: Vec<(String, String)>,
) -> Result<(), WitError> {
    *slot.borrow_mut() = Some(E::init(&Config(config)).map_err(to_wit)?);
    Ok(())
}

#[doc(hidden)]
pub fn guest_extract<E: TimestampExtractor>(
    slot: &RefCell<Option<E>>,
    batch: &[u8],
) -> Result<Vec<i64>, WitError> {
    let mut slot = slot.borrow_mut();
    if slot.is_none() {
        *slot = Some(E::init(&Config::default()).map_err(to_wit)?);
    }
    extract_batch(slot.as_mut().expect("initialized above"), batch).map_err(to_wit)
}

/// Exports a [`TimestampExtractor`] as the plugin's
/// `sluice:plugin/extractor@0.1.0`: `export_extractor!(type MyExtractor)`.
#[macro_export]
macro_rules! export_extractor {
    (type $ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __SLUICE_EXTRACTOR: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            #[allow(dead_code, reason = "only exported when built for wasm32")]
            struct __SluiceExport;
            impl $crate::bindings_extractor::exports::sluice::plugin::extractor::Guest for __SluiceExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), $crate::bindings_extractor::exports::sluice::plugin::extractor::Error> {
                    __SLUICE_EXTRACTOR.with(|slot| $crate::__rt::extract::guest_init(slot, config))
                }
                fn extract(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<i64>, $crate::bindings_extractor::exports::sluice::plugin::extractor::Error> {
                    __SLUICE_EXTRACTOR.with(|slot| $crate::__rt::extract::guest_extract(slot, &batch))
                }
            }
            #[cfg(target_arch = "wasm32")]
            $crate::bindings_extractor::export_timestamp_extractor!(__SluiceExport with_types_in $crate::bindings_extractor);
        };
    };
}
