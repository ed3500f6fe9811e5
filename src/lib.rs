//! zerotouch: an on-premise provisioning server for Polycom/Poly phones and video endpoints.
//!
//! The crate is a library so that the binary, the integration tests and the benchmarks share
//! one implementation. Dependencies point one way (docs/architecture.md, "Layers"): `cli`,
//! `http` and `server` call `actions`, `actions` call `db` and `domain`, `db` reads and
//! writes `domain` types, and `domain` imports none of them; nothing outside `http` knows
//! about rouille or maud. `tests/it/layers.rs` keeps it so.

pub mod actions;
pub mod backup;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod db;
pub mod diag;
pub mod domain;
pub mod error;
pub mod external;
pub mod ftp;
pub mod host;
pub mod http;
pub mod keyfile;
pub mod logging;
pub mod metrics;
pub mod privilege;
pub mod recorder;
pub mod server;
pub mod sip;
pub mod tftp;
pub mod tls;

pub use error::{Error, Result};

/// The version shown by `--version`, the health page and the package.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
