//! The payment simulator, chaos build: the same code as `payment-sim`, but
//! 30 % of the intents that would complete fail, and every outcome comes
//! 1–5 s later. Swap it in (`tacos swap payment-sim --build chaos`) to see how
//! the rest of the platform copes; swap back with `--build standard`.

#[path = "../../payment-sim/src/announce.rs"]
mod announce;
#[path = "../../payment-sim/src/sim.rs"]
mod sim;

const PROFILE: sim::Profile = sim::Profile {
    extra_failure_percent: 30,
    extra_delay_seconds: (1, 5),
};
