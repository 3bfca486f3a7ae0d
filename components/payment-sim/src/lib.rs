//! The payment simulator, standard build: the scenarios as the original
//! defines them (the code is in `sim.rs` and `announce.rs`, shared with `payment-sim-chaos`).

mod announce;
mod sim;

const PROFILE: sim::Profile = sim::Profile {
    extra_failure_percent: 0,
    extra_delay_seconds: (0, 0),
};
