//! What an invocation of a scheduled function (the renewer, the syncer) may use: its time
//! ([`Budget`], [`time_left`]).

mod budget;

pub use budget::{lease_owner, time_left, Budget, DEFAULT_LEASE};
