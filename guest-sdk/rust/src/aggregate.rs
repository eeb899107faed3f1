//! Aggregators: fold the records of one key into an aggregate.
//!
//! The host groups records by key, stores each key's aggregate (with a
//! changelog) and sends every updated aggregate downstream. A plugin only
//! says how a record changes an aggregate:
//!
//! ```
//! use sluice_sdk::{Aggregator, Config, Error, Record};
//!
//! #[derive(Default)]
//! struct Total;
//!
//! impl Aggregator for Total {
//!     type Aggregate = f64;
//!     fn init(_: &Config) -> Result<Self, Error> {
//!         Ok(Total)
//!     }
//!     fn initial(&self, _key: Option<&[u8]>) -> f64 {
//!         0.0
//!     }
//!     fn add(&mut self, total: f64, record: Record<'_>) -> Result<f64, Error> {
//!         let amount: f64 = record.value_str()?.parse().map_err(|_| Error::new("bad-amount", "not a number"))?;
//!         Ok(total + amount)
//!     }
//! }
//! sluice_sdk::export_aggregator!(type Total);
//!
//! # fn main() {
//! let out = sluice_sdk::testing::run_aggregator::<Total>(&[], vec![
//!     Record::new(Some("a"), Some("1.5")),
//!     Record::new(Some("a"), Some("x")),
//!     Record::new(Some("a"), Some("2")),
//! ]).unwrap();
//! assert_eq!(out[2].as_ref().unwrap(), &3.5);
//! assert_eq!(out[1].as_ref().unwrap_err().code, "bad-amount");
//! # }
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_frame::{Reader, Writer};

use crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error as WitError;
use crate::{Config, Error, Record};

/// A keyed aggregation. The aggregate is stored, and sent downstream, as
/// JSON. Export it with `export_aggregator!(type MyAggregator)`.
pub trait Aggregator: Sized + 'static {
    /// The aggregate of one key.
    type Aggregate: Serialize + DeserializeOwned;

    /// Builds the aggregator from the step's configuration.
    fn init(config: &Config) -> Result<Self, Error>;

    /// The aggregate of a key that has none yet.
    fn initial(&self, key: Option<&[u8]>) -> Self::Aggregate;

    /// Adds one record. Returning an error rejects the record: the key's
    /// aggregate stays as it was before it.
    fn add(
        &mut self,
        aggregate: Self::Aggregate,
        record: Record<'_>,
    ) -> Result<Self::Aggregate, Error>;

    /// Merges two aggregates of one key (`a` is the earlier). Session
    /// windows need it; the default refuses.
    fn merge(
        &mut self,
        _key: Option<&[u8]>,
        _a: Self::Aggregate,
        _b: Self::Aggregate,
    ) -> Result<Self::Aggregate, Error> {
        Err(Error::new(
            "merge-unsupported",
            "this aggregator does not implement `merge`",
        ))
    }
}

fn bad_frame(e: sluice_frame::FrameError) -> Error {
    Error::new("bad-frame", e.to_string())
}

fn decode<A: Aggregator>(bytes: &[u8]) -> Result<A::Aggregate, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            "bad-aggregate",
            format!("the stored aggregate does not decode: {e}"),
        )
    })
}

/// A key's last accepted aggregate: encoded (`None`: the key has none yet),
/// and decoded when it is at hand.
type Slot<T> = (Option<Vec<u8>>, Option<T>);

/// Runs an `add` call: threads each key's aggregate through its records.
pub(crate) fn add_batch<A: Aggregator>(
    aggregator: &mut A,
    aggregates: &[u8],
    batch: &[u8],
) -> Result<Vec<u8>, Error> {
    // Per key: the last accepted aggregate, encoded, and (when decoded)
    // its value. A rejection falls back to the encoded form.
    let mut current: HashMap<Option<&[u8]>, Slot<A::Aggregate>> = HashMap::new();
    let (mut reader, groups) = Reader::input(aggregates).map_err(bad_frame)?;
    for _ in 0..groups {
        let r = reader.record().map_err(bad_frame)?;
        current.insert(r.key, (r.value.map(<[u8]>::to_vec), None));
    }
    let (mut reader, count) = Reader::input(batch).map_err(bad_frame)?;
    let mut writer = Writer::output(Vec::with_capacity(batch.len()), count);
    for _ in 0..count {
        let frame_record = reader.record().map_err(bad_frame)?;
        let key = frame_record.key;
        let slot = current.entry(key).or_insert((None, None));
        let result = (|| {
            let aggregate = match slot.1.take() {
                Some(a) => a,
                None => match &slot.0 {
                    Some(bytes) => decode::<A>(bytes)?,
                    None => aggregator.initial(key),
                },
            };
            let record = Record::from_frame(&frame_record)?;
            let next = aggregator.add(aggregate, record)?;
            let bytes = serde_json::to_vec(&next)?;
            Ok::<_, Error>((next, bytes))
        })();
        match result {
            Ok((next, bytes)) => {
                writer.begin_ok();
                writer.record(key, Some(&bytes), None, std::iter::empty());
                *slot = (Some(bytes), Some(next));
            }
            Err(e) => writer.rejected(&e.code, &e.message),
        }
    }
    Ok(writer.finish())
}

fn to_wit(e: Error) -> WitError {
    WitError {
        code: e.code,
        message: e.message,
    }
}

#[doc(hidden)]
pub fn guest_init<A: Aggregator>(
    slot: &RefCell<Option<A>>,
    config: Vec<(String, String)>,
) -> Result<(), WitError> {
    *slot.borrow_mut() = Some(A::init(&Config(config)).map_err(to_wit)?);
    Ok(())
}

fn with_aggregator<A: Aggregator, T>(
    slot: &RefCell<Option<A>>,
    f: impl FnOnce(&mut A) -> Result<T, Error>,
) -> Result<T, WitError> {
    let mut slot = slot.borrow_mut();
    if slot.is_none() {
        *slot = Some(A::init(&Config::default()).map_err(to_wit)?);
    }
    f(slot.as_mut().expect("initialized above")).map_err(to_wit)
}

#[doc(hidden)]
pub fn guest_add<A: Aggregator>(
    slot: &RefCell<Option<A>>,
    aggregates: &[u8],
    batch: &[u8],
) -> Result<Vec<u8>, WitError> {
    with_aggregator(slot, |a| add_batch(a, aggregates, batch))
}

#[doc(hidden)]
pub fn guest_merge<A: Aggregator>(
    slot: &RefCell<Option<A>>,
    key: Option<&[u8]>,
    a: &[u8],
    b: &[u8],
) -> Result<Vec<u8>, WitError> {
    with_aggregator(slot, |agg| {
        let merged = agg.merge(key, decode::<A>(a)?, decode::<A>(b)?)?;
        Ok(serde_json::to_vec(&merged)?)
    })
}

/// Exports an [`Aggregator`] as the plugin's
/// `sluice:plugin/aggregator@0.1.0`: `export_aggregator!(type MyAggregator)`.
/// Use it once per plugin crate, instead of `export_processor!`.
#[macro_export]
macro_rules! export_aggregator {
    (type $ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __SLUICE_AGGREGATOR: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            #[allow(dead_code, reason = "only exported when built for wasm32")]
            struct __SluiceExport;
            impl $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Guest for __SluiceExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error> {
                    __SLUICE_AGGREGATOR.with(|slot| $crate::__rt::aggregate::guest_init(slot, config))
                }
                fn add(
                    aggregates: ::std::vec::Vec<u8>,
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error> {
                    __SLUICE_AGGREGATOR.with(|slot| $crate::__rt::aggregate::guest_add(slot, &aggregates, &batch))
                }
                fn merge(
                    key: ::std::option::Option<::std::vec::Vec<u8>>,
                    a: ::std::vec::Vec<u8>,
                    b: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error> {
                    __SLUICE_AGGREGATOR.with(|slot| $crate::__rt::aggregate::guest_merge(slot, key.as_deref(), &a, &b))
                }
            }
            #[cfg(target_arch = "wasm32")]
            $crate::bindings_aggregator::export_record_aggregator!(__SluiceExport with_types_in $crate::bindings_aggregator);
        };
    };
}
