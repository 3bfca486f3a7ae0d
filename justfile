# Developer front door. Every recipe is a plain cargo command.

default:
    @just --list

# Build the host and (through its build script) the components.
build:
    cargo build --release -p tacos-host

# Run the platform on 127.0.0.1:8000 with the default bundle.
up *ARGS:
    cargo run --release -p tacos-host -- up {{ARGS}}

# Run the platform on a virtual clock in a throwaway data dir.
demo:
    cargo run --release -p tacos-host -- up --virtual-clock --data-dir /tmp/tacos-demo

test:
    cargo test --workspace

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    cargo clippy --all-targets -p tacos-fuzz -- -D warnings
    cargo clippy --target wasm32-wasip2 --target-dir target/wasm -p tacos-guest -p tacos-queue -p tacos-reservation -p tacos-inventory -p tacos-payment-sim -p tacos-payment-sim-chaos -p tacos-worker -p tacos-fixture-looper -p tacos-fixture-stuck-consumer -p tacos-fixture-hello-http -- -D warnings

# Fuzz every decoder of outside bytes (host/fuzz) for SECONDS; a crash lands in host/fuzz/crashes/.
fuzz seconds="60":
    cargo run -p tacos-fuzz -- --seconds {{seconds}}

# The flash-sale benchmark (docs/BENCHMARKS.md).
bench users="100000" seats="10000" concurrency="64":
    cargo run --release -p tacos-bench -- flash-sale --users {{users}} --seats {{seats}} --concurrency {{concurrency}}

# queue status vs `wasmtime serve` vs hyper (docs/BENCHMARKS.md); installs wrk and the wasmtime CLI if missing.
bench-route:
    command -v wrk >/dev/null || apt-get install -y wrk
    command -v wasmtime >/dev/null || cargo install wasmtime-cli --version 48.0.8 --locked
    cargo run --release -p tacos-bench -- route

# Swap latency (cold/warm cache) and p99 during swaps vs. without (docs/BENCHMARKS.md).
bench-swap:
    cargo run --release -p tacos-bench -- swap
