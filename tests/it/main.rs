//! Integration tests: the real binary on loopback ports, driven the way phones and admins
//! drive it. One test binary with shared helpers (`common`).

mod abuse;
mod accounts;
mod api;
mod assets;
mod autosync;
mod bad_input;
mod boot;
mod browser;
mod browser_files;
mod browser_lens;
mod cli;
mod common;
mod console;
mod crash;
mod device_secrets;
mod diag;
mod firmware;
mod http_loop;
mod lens;
mod lens_api;
mod lens_api_records;
mod lens_records;
mod ops;
mod overrides;
mod policies;
mod settings_api;
mod settings_pages;
mod sim;
mod templates;
mod tls;
mod tls_files;
mod transport;
