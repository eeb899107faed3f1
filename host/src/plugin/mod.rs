//! Plugins: WebAssembly components that supply per-record logic.
//!
//! - [`Plugin`]: a component read, checked and compiled once, ready to be
//!   instantiated per task (`InstancePre`).
//! - [`PluginInstance`]: one task's instance; calls never re-enter an
//!   instance that trapped.
//! - [`frame`]: host side of the call-batch frame.
//! - [`builder`]: `sluice plugin build`: a plugin crate to a component.
//! - [`bindings`]: the only `bindgen!` in the host.

pub mod bindings;
pub mod builder;
pub mod component;
pub mod frame;
pub mod instance;

pub use component::{Plugin, PluginKind};
pub use instance::{PluginInstance, Trap};

/// How often the epoch moves on: the resolution of call deadlines.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The wasmtime engine every plugin of a process shares (a clone of one
/// engine). Calls are interruptible: a thread started with the engine
/// moves its epoch on every [`EPOCH_TICK`], and each call into a plugin
/// gets a deadline in epochs (`[processing] plugin.deadline.ms`).
pub fn engine() -> wasmtime::Engine {
    static ENGINE: std::sync::OnceLock<wasmtime::Engine> = std::sync::OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = wasmtime::Config::new();
            config.wasm_component_model(true);
            config.cranelift_opt_level(wasmtime::OptLevel::Speed);
            config.epoch_interruption(true);
            let engine =
                wasmtime::Engine::new(&config).expect("static engine configuration is valid");
            let ticker = engine.weak();
            std::thread::Builder::new()
                .name("epoch-ticker".into())
                .spawn(move || {
                    while let Some(engine) = ticker.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                    }
                })
                .expect("starting the epoch ticker");
            engine
        })
        .clone()
}
