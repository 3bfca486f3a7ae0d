//! Host bindings of the `tacos:platform` worlds (generated from `wit/`).
//!
//! `consumer` generates the imports (implemented in this folder) and both
//! exports; `service` reuses its imports, so one linker serves both kinds.

pub mod consumer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tacos:platform/consumer",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub mod service {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tacos:platform/service",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "tacos:platform/kv": super::consumer::tacos::platform::kv,
            "tacos:platform/queue": super::consumer::tacos::platform::queue,
            "tacos:platform/clock": super::consumer::tacos::platform::clock,
            "tacos:platform/rpc": super::consumer::tacos::platform::rpc,
            "tacos:platform/config": super::consumer::tacos::platform::config,
            "tacos:platform/log": super::consumer::tacos::platform::log,
            "tacos:platform/webhook": super::consumer::tacos::platform::webhook,
            "tacos:platform/token": super::consumer::tacos::platform::token,
        },
    });
}

pub use consumer::tacos::platform;
