//! A synchronous SIP sender: `OPTIONS` (is a phone reachable) and `NOTIFY` with
//! `Event: check-sync` (re-read your configuration), over UDP, as one RFC 3261 non-INVITE
//! client transaction each, with one Digest challenge answered.
//!
//! It knows nothing of provisioning, devices or the database: callers give it an address,
//! the request to send and, when they trust that address with them, the credentials to
//! answer a challenge with and the realm they expect. Where to send, and whether it is safe
//! to, is decided in `actions::sip` (only to an address a device proved is its own).
//!
//! No SIP message crate is used: the maintained candidates are async stacks or parsers
//! whose last release is years old (`rsip` 0.4.0, April 2022, nom 7), and two requests and
//! the responses to them need only a small builder (`message.rs`) and a strict parser
//! (`response.rs`, fuzzed: `fuzz/fuzz_targets/sip_response.rs`).

mod digest;
mod message;
mod response;
mod transaction;

pub use digest::{Challenge, DigestCredentials};
pub use message::{Method, RequestSpec};
pub use response::{ParseError, Response, parse_response};
pub use transaction::{Outcome, Sender, Timers};
