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

#[cfg(feature = "json")]
use serde::Serialize;
#[cfg(feature = "json")]
use serde::de::DeserializeOwned;
use sluice_frame::{Reader, Writer};

use crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error as WitError;
use crate::{Config, Error, Record};

#[cfg(feature = "json")]
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

#[cfg(feature = "json")]
fn decode<A: Aggregator>(bytes: &[u8]) -> Result<A::Aggregate, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            "bad-aggregate",
            format!("the stored aggregate does not decode: {e}"),
        )
    })
}

#[cfg(feature = "json")]
/// A key's last accepted aggregate: encoded (`None`: the key has none yet),
/// and decoded when it is at hand.
type Slot<T> = (Option<Vec<u8>>, Option<T>);

#[cfg(feature = "json")]
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

/// A key-wise fold that an aggregator world export can run: an
/// [`Aggregator`] (JSON aggregates) or a [`Reducer`] (raw values).
#[doc(hidden)]
pub trait Fold: Sized + 'static {
    fn init(config: &Config) -> Result<Self, Error>;
    fn add_batch(&mut self, aggregates: &[u8], batch: &[u8]) -> Result<Vec<u8>, Error>;
    fn merge(&mut self, key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Error>;
}

#[cfg(feature = "json")]
/// An [`Aggregator`] as a [`Fold`].
#[doc(hidden)]
pub struct AggregatorFold<A>(A);

#[cfg(feature = "json")]
impl<A: Aggregator> Fold for AggregatorFold<A> {
    fn init(config: &Config) -> Result<Self, Error> {
        A::init(config).map(AggregatorFold)
    }

    fn add_batch(&mut self, aggregates: &[u8], batch: &[u8]) -> Result<Vec<u8>, Error> {
        add_batch(&mut self.0, aggregates, batch)
    }

    fn merge(&mut self, key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Error> {
        let merged = self.0.merge(key, decode::<A>(a)?, decode::<A>(b)?)?;
        Ok(serde_json::to_vec(&merged)?)
    }
}

/// A reduction: the aggregate of a key is a value like its records' values,
/// the first record's value to start with, then combined with each next
/// record. Export it with `export_reducer!(type MyReducer)`, or a function
/// `fn(&[u8], Record<'_>) -> Result<Vec<u8>, Error>` with
/// `export_reducer!(my_fn)`. Unlike an [`Aggregator`]'s, the values are
/// bytes, not JSON.
pub trait Reducer: Sized + 'static {
    /// Builds the reducer from the step's configuration.
    fn init(config: &Config) -> Result<Self, Error>;

    /// Combines the key's current value with the next record. Returning an
    /// error rejects the record; the value stays as it was.
    fn reduce(&mut self, current: &[u8], record: Record<'_>) -> Result<Vec<u8>, Error>;
}

/// A [`Reducer`] as a [`Fold`].
#[doc(hidden)]
pub struct ReducerFold<R>(R);

impl<R: Reducer> Fold for ReducerFold<R> {
    fn init(config: &Config) -> Result<Self, Error> {
        R::init(config).map(ReducerFold)
    }

    fn add_batch(&mut self, aggregates: &[u8], batch: &[u8]) -> Result<Vec<u8>, Error> {
        let mut current: HashMap<Option<&[u8]>, Option<Vec<u8>>> = HashMap::new();
        let (mut reader, groups) = Reader::input(aggregates).map_err(bad_frame)?;
        for _ in 0..groups {
            let r = reader.record().map_err(bad_frame)?;
            current.insert(r.key, r.value.map(<[u8]>::to_vec));
        }
        let (mut reader, count) = Reader::input(batch).map_err(bad_frame)?;
        let mut writer = Writer::output(Vec::with_capacity(batch.len()), count);
        for _ in 0..count {
            let frame_record = reader.record().map_err(bad_frame)?;
            let key = frame_record.key;
            let slot = current.entry(key).or_insert(None);
            let result = Record::from_frame(&frame_record).and_then(|record| match slot {
                None => Ok(record.value.as_deref().unwrap_or_default().to_vec()),
                Some(value) => self.0.reduce(value, record),
            });
            match result {
                Ok(next) => {
                    writer.begin_ok();
                    writer.record(key, Some(&next), None, std::iter::empty());
                    *slot = Some(next);
                }
                Err(e) => writer.rejected(&e.code, &e.message),
            }
        }
        Ok(writer.finish())
    }

    fn merge(&mut self, _key: Option<&[u8]>, _a: &[u8], _b: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::new(
            "merge-unsupported",
            "a reducer cannot merge two values (use an aggregator for session windows)",
        ))
    }
}

fn to_wit(e: Error) -> WitError {
    WitError {
        code: e.code,
        message: e.message,
    }
}

#[doc(hidden)]
pub fn guest_init<F: Fold>(
    slot: &RefCell<Option<F>>,
    config: Vec<(String, String)>,
) -> Result<(), WitError> {
    *slot.borrow_mut() = Some(F::init(&Config(config)).map_err(to_wit)?);
    Ok(())
}

fn with_fold<F: Fold, T>(
    slot: &RefCell<Option<F>>,
    f: impl FnOnce(&mut F) -> Result<T, Error>,
) -> Result<T, WitError> {
    let mut slot = slot.borrow_mut();
    if slot.is_none() {
        *slot = Some(F::init(&Config::default()).map_err(to_wit)?);
    }
    f(slot.as_mut().expect("initialized above")).map_err(to_wit)
}

#[doc(hidden)]
pub fn guest_add<F: Fold>(
    slot: &RefCell<Option<F>>,
    aggregates: &[u8],
    batch: &[u8],
) -> Result<Vec<u8>, WitError> {
    with_fold(slot, |f| f.add_batch(aggregates, batch))
}

#[doc(hidden)]
pub fn guest_merge<F: Fold>(
    slot: &RefCell<Option<F>>,
    key: Option<&[u8]>,
    a: &[u8],
    b: &[u8],
) -> Result<Vec<u8>, WitError> {
    with_fold(slot, |f| f.merge(key, a, b))
}

/// Exports an [`Aggregator`] as the plugin's
/// `sluice:plugin/aggregator@0.1.0`: `export_aggregator!(type MyAggregator)`.
/// Use it once per plugin crate, instead of `export_processor!`.
#[macro_export]
macro_rules! export_aggregator {
    (type $ty:ty) => {
        $crate::__export_fold!($crate::__rt::aggregate::AggregatorFold<$ty>);
    };
}

/// Exports a [`Reducer`] as the plugin's `sluice:plugin/aggregator@0.1.0`:
/// `export_reducer!(type MyReducer)`, or `export_reducer!(my_fn)` for a
/// function `fn(&[u8], Record<'_>) -> Result<Vec<u8>, Error>`.
#[macro_export]
macro_rules! export_reducer {
    (type $ty:ty) => {
        $crate::__export_fold!($crate::__rt::aggregate::ReducerFold<$ty>);
    };
    ($func:path) => {
        const _: () = {
            struct __SluiceReduceFn;
            impl $crate::Reducer for __SluiceReduceFn {
                fn init(_: &$crate::Config) -> ::std::result::Result<Self, $crate::Error> {
                    ::std::result::Result::Ok(__SluiceReduceFn)
                }
                fn reduce(
                    &mut self,
                    current: &[u8],
                    record: $crate::Record<'_>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::Error> {
                    $func(current, record)
                }
            }
    $crate::export_reducer!(type __SluiceReduceFn);
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_fold {
    ($fold:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __SLUICE_FOLD: ::std::cell::RefCell<::std::option::Option<$fold>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            #[allow(dead_code, reason = "only exported when built for wasm32")]
            struct __SluiceExport;
            impl $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Guest for __SluiceExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error> {
                    __SLUICE_FOLD.with(|slot| $crate::__rt::aggregate::guest_init(slot, config))
                }
                fn add(
                    aggregates: ::std::vec::Vec<u8>,
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error> {
                    __SLUICE_FOLD.with(|slot| $crate::__rt::aggregate::guest_add(slot, &aggregates, &batch))
                }
                fn merge(
                    key: ::std::option::Option<::std::vec::Vec<u8>>,
                    a: ::std::vec::Vec<u8>,
                    b: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings_aggregator::exports::sluice::plugin::aggregator::Error> {
                    __SLUICE_FOLD.with(|slot| $crate::__rt::aggregate::guest_merge(slot, key.as_deref(), &a, &b))
                }
            }
            #[cfg(target_arch = "wasm32")]
            $crate::bindings_aggregator::export_record_aggregator!(__SluiceExport with_types_in $crate::bindings_aggregator);
        };
    };
}

#[cfg(test)]
mod tests {
    use crate::testing::run_reducer;
    use crate::{Config, Error, Record, Reducer};

    /// Keeps the highest price seen, as text.
    struct MaxPrice;

    impl Reducer for MaxPrice {
        fn init(_: &Config) -> Result<Self, Error> {
            Ok(MaxPrice)
        }
        fn reduce(&mut self, current: &[u8], record: Record<'_>) -> Result<Vec<u8>, Error> {
            let parse = |b: &[u8]| -> Result<f64, Error> {
                std::str::from_utf8(b)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| Error::new("bad-price", "not a number"))
            };
            let next = parse(record.value.as_deref().unwrap_or_default())?;
            Ok(parse(current)?.max(next).to_string().into_bytes())
        }
    }

    #[test]
    fn a_reducer_starts_from_the_first_value_and_skips_rejected_records() {
        let out = run_reducer::<MaxPrice>(
            &[],
            vec![
                Record::new(Some("a"), Some("3")),
                Record::new(Some("b"), Some("1")),
                Record::new(Some("a"), Some("x")),
                Record::new(Some("a"), Some("7")),
                Record::new(Some("a"), Some("5")),
            ],
        )
        .unwrap();
        let values: Vec<Result<String, String>> = out
            .into_iter()
            .map(|r| r.map(|v| String::from_utf8(v).unwrap()).map_err(|e| e.code))
            .collect();
        assert_eq!(
            values,
            vec![
                Ok("3".into()),
                Ok("1".into()),
                Err("bad-price".into()),
                Ok("7".into()),
                Ok("7".into())
            ]
        );
    }
}
