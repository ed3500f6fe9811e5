//! Integration tests: the real binary on loopback ports, driven the way phones and admins
//! drive it. One test binary with shared helpers (`common`).

mod bad_input;
mod boot;
mod cli;
mod common;
mod diag;
mod http_loop;
mod ops;
mod templates;
mod tls;
mod tls_files;
mod transport;
