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

/// Creates the wasmtime engine every plugin of a process shares.
pub fn engine() -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    wasmtime::Engine::new(&config).expect("static engine configuration is valid")
}
