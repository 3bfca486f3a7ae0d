//! The one wasmtime `Engine`: pooling allocator, epoch interruption, compiled
//! component cache.
//!
//! - Pooling + copy-on-write memory images make instantiation a few
//!   microseconds, which is what lets every call get a fresh instance.
//! - Epochs tick every millisecond on a background thread; each call's store
//!   checks its own deadline on every tick, yields to tokio once it has run a
//!   slice (so a spinning guest cannot starve the executor), sleeps when its
//!   tenant is over its guest-time quota, and traps once it is late.
//! - Compiled code is cached on disk keyed by the component's bytes and the
//!   engine's settings (wasmtime's cache), so restarts and swaps of a known
//!   component do not recompile.

use anyhow::Context;
use std::path::Path;
use std::time::Duration;
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

/// How many instances may be alive at once, across all calls.
pub const POOL_INSTANCES: u32 = 1000;
/// The deepest chain of rpc calls (edge → reservation → inventory → queue …).
pub const MAX_CALL_DEPTH: u32 = 4;
/// Memory per instance reset in place rather than returned to the kernel.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// The largest linear memory any instance may have.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

pub fn build(cache_dir: &Path) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Our worlds use no component-model async (streams, futures, async
    // lifts). Without it a store's drop skips the concurrent-task teardown,
    // which builds an error (and, under RUST_BACKTRACE, a backtrace) per call.
    config.concurrency_support(false);
    // `TACOS_WASM_PROFILER=perfmap` names compiled guest functions for `perf`
    // (a build with `--features tacos-host/profiling`).
    if std::env::var("TACOS_WASM_PROFILER").as_deref() == Ok("perfmap") {
        anyhow::ensure!(
            cfg!(feature = "profiling"),
            "TACOS_WASM_PROFILER needs a host built with `--features tacos-host/profiling`"
        );
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES * 2)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_core_instances_per_component(16)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        // Reset a freed instance's memory by rewriting the pages it dirtied
        // (found with PAGEMAP_SCAN where the kernel has it) instead of
        // `madvise`: measured here, madvise's TLB shootdowns and the page
        // faults that follow cost ~20% of the host's CPU under load.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES / 4)
        .decommit_batch_size(16);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating cache dir {}", cache_dir.display()))?;
    // wasmtime's cache wants an absolute path; `--data-dir` defaults to `./.tacos`.
    let cache_dir = std::fs::canonicalize(cache_dir)
        .with_context(|| format!("resolving cache dir {}", cache_dir.display()))?;
    let mut cache = CacheConfig::new();
    cache.with_directory(cache_dir);
    config.cache(Some(
        Cache::new(cache)
            .map_err(anyhow::Error::from)
            .context("configuring the compiled-component cache")?,
    ));

    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    start_epoch_ticker(&engine)?;
    Ok(engine)
}

fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("tacos-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .context("starting the epoch ticker")?;
    Ok(())
}
