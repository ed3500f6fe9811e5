//! zerotouch: an on-premise provisioning server for Polycom/Poly phones and video endpoints.
//!
//! The crate is a library so that the binary, the integration tests and the benchmarks share
//! one implementation. Dependencies point one way: `http` → `domain` → `db`, and `cli` →
//! `domain`; nothing below `http` knows about rouille or maud.

pub mod backup;
pub mod cli;
pub mod config;
pub mod db;
pub mod diag;
pub mod domain;
pub mod error;
pub mod external;
pub mod http;
pub mod keyfile;
pub mod metrics;
pub mod recorder;
pub mod server;
pub mod tls;

pub use error::{Error, Result};

/// The version shown by `--version`, the health page and the package.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
