//! The integration tests, one module per part of the system, in one test binary: linked once
//! (the SDK, axum and the simulator), and sharing one emulator (`harness::shared_moto`).
//! Run one part with `cargo test -p integration-tests --test integration syncer::`.

mod capture;
mod documented;
mod emulator;
mod faults;
mod feed;
mod honest_passes;
mod indexes;
mod kept_pages;
mod load;
mod permissions;
mod personal_data;
mod protime_client;
mod protime_terms;
mod quiet;
mod receiver;
mod reconcile;
mod reinstall;
mod renewer;
mod secrets;
mod signing_keys;
mod simulator;
mod switches;
mod syncer;
mod template;
mod windows;
