//! Our own HTTP/1.1 engine (docs/architecture.md, "The connection loop"): `server` accepts
//! and parks idle connections, `conn` reads requests and writes responses, `tls` runs the
//! rustls handshake, `admission` caps long transfers,
//! `budget` counts the memory request bodies hold. It runs any `conn::Service` and knows
//! nothing of provisioning, phones or the console (`tests/it/layers.rs` keeps it so).

pub mod admission;
pub mod budget;
pub mod conn;
pub mod server;
pub mod tls;
