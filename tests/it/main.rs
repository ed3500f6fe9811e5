//! Integration tests: the real binary on loopback ports, driven the way phones and admins
//! drive it. One test binary with shared helpers (`common`).

mod api;
mod assets;
mod bad_input;
mod boot;
mod browser;
mod browser_files;
mod cli;
mod common;
mod console;
mod diag;
mod firmware;
mod http_loop;
mod ops;
mod overrides;
mod tls;
mod tls_files;
