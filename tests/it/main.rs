//! Integration tests: the real binary on loopback ports, driven the way phones and admins
//! drive it. One test binary with shared helpers (`common`).

mod abuse;
mod accounts;
mod api;
mod autosync;
mod bad_input;
mod boot;
mod browser;
mod cli;
mod common;
mod console;
mod crash;
mod device_secrets;
mod diag;
mod http_loop;
mod ops;
mod policies;
mod sim;
mod templates;
mod tls;
mod tls_files;
mod transport;
