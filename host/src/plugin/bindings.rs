//! The one place that generates host bindings from `wit/`.
//!
//! Every world the host speaks is generated here, so that a new version of
//! the WIT package is added beside the old one rather than replacing it.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "record-processor",
});

/// The aggregator world; it shares `types` and `log` with the processor's.
pub mod aggregator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "record-aggregator",
        with: {
            "sluice:plugin/types": super::sluice::plugin::types,
            "sluice:plugin/log": super::sluice::plugin::log,
        },
    });
}

/// The timestamp-extractor world; it shares `types` and `log` too.
pub mod extractor {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "timestamp-extractor",
        with: {
            "sluice:plugin/types": super::sluice::plugin::types,
            "sluice:plugin/log": super::sluice::plugin::log,
        },
    });
}

/// The value-joiner world; it shares `types` and `log` too.
pub mod joiner {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "value-joiner",
        with: {
            "sluice:plugin/types": super::sluice::plugin::types,
            "sluice:plugin/log": super::sluice::plugin::log,
        },
    });
}

/// The versioned name of the processor interface, as components export it.
pub const PROCESSOR_INTERFACE: &str = "sluice:plugin/processor@0.1.0";

/// The versioned name of the aggregator interface.
pub const AGGREGATOR_INTERFACE: &str = "sluice:plugin/aggregator@0.1.0";

/// The versioned name of the timestamp-extractor interface.
pub const EXTRACTOR_INTERFACE: &str = "sluice:plugin/extractor@0.1.0";

/// The versioned name of the value-joiner interface.
pub const JOINER_INTERFACE: &str = "sluice:plugin/joiner@0.1.0";

/// What a plugin may import. Anything else (WASI included) is refused.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "sluice:plugin/log@0.1.0",
    "sluice:plugin/state@0.1.0",
    "sluice:plugin/types@0.1.0",
];
