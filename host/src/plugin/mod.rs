//! Plugins: WebAssembly components that supply per-record logic.
//!
//! - [`Plugin`]: a component read, checked and compiled once, ready to be
//!   instantiated per task (`InstancePre`).
//! - [`PluginInstance`]: one task's instance; calls never re-enter an
//!   instance that trapped.
//! - [`frame`]: host side of the call-batch frame.
//! - [`host`]: what a plugin may import: `log` and `state`.
//! - [`reference`]: how a pipeline names a plugin (a component or a crate).
//! - [`cache`]: compiled components on disk, keyed by digest and engine.
//! - [`bindings`]: the only `bindgen!` in the host.

pub mod bindings;
pub mod cache;
pub mod component;
pub mod frame;
pub mod host;
pub mod instance;
pub mod limits;
pub mod reference;

pub use component::{Plugin, PluginKind};
pub use instance::{PluginInstance, Trap};
pub use limits::{Limits, TenantBudget};

/// How often the epoch moves on: the resolution of call deadlines.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// How the engine allocates plugin instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineSettings {
    /// With the pooling allocator: at most this many component instances
    /// alive at once in the whole process, their memories and tables
    /// reserved up front and reused. `None`: allocated on demand.
    pub pooled_instances: Option<u32>,
}

static SETTINGS: std::sync::OnceLock<EngineSettings> = std::sync::OnceLock::new();

/// Chooses how the process's engine ([`engine`]) allocates instances;
/// call it before the engine's first use (`sluice serve` pools). Returns
/// false, changing nothing, if the engine's settings were fixed already.
pub fn configure(settings: EngineSettings) -> bool {
    SETTINGS.set(settings).is_ok()
}

/// Core instances, memories and tables a pool keeps per component
/// instance: a Rust component has its module plus adapter shims; larger
/// components (JavaScript, Python) have more.
const POOL_CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const POOL_MEMORIES_PER_COMPONENT: u32 = 1;
const POOL_TABLES_PER_COMPONENT: u32 = 8;

/// A new engine with `settings`, its epoch moved on by a thread of its
/// own for as long as the engine lives.
pub fn new_engine(settings: EngineSettings) -> wasmtime::Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config.epoch_interruption(true);
    // A plugin rebuilt after a small edit compiles mostly from cache.
    if let Some(functions) = cache::FunctionCache::from_env() {
        config.enable_incremental_compilation(std::sync::Arc::new(functions))?;
    }
    if let Some(n) = settings.pooled_instances {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(POOL_CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(POOL_MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(POOL_TABLES_PER_COMPONENT))
            // The largest `plugin.memory.mb`; each instance's own cap is
            // its store limit.
            .max_memory_size(4 << 30)
            .table_elements(100_000);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = wasmtime::Engine::new(&config)?;
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
        .map_err(|e| wasmtime::Error::msg(format!("starting the epoch ticker: {e}")))?;
    Ok(engine)
}

/// The wasmtime engine every plugin of a process shares (a clone of one
/// engine), made with the settings given to [`configure`]. Calls are
/// interruptible: a thread started with the engine moves its epoch on
/// every [`EPOCH_TICK`], and each call into a plugin gets a deadline in
/// epochs (`[processing] plugin.deadline.ms`).
///
/// # Panics
/// If the engine cannot be made (the pool's address space cannot be
/// reserved): with the message saying so.
pub fn engine() -> wasmtime::Engine {
    static ENGINE: std::sync::OnceLock<wasmtime::Engine> = std::sync::OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let settings = *SETTINGS.get_or_init(EngineSettings::default);
            new_engine(settings)
                .unwrap_or_else(|e| panic!("making the wasmtime engine ({settings:?}): {e:#}"))
        })
        .clone()
}
