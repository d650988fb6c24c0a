//! One module per command.

pub mod get;
pub mod quarantine;
pub mod send;
pub mod status;
pub mod sync;
pub mod verify;
