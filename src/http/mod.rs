//! HTTP: our own connection loop (`conn`, `server`, `tls`), the device endpoints phones call
//! (`device`), device authentication (`auth`) and the admin listener (`admin`).
//! Only this module knows about rouille and maud.

pub mod admin;
pub mod admission;
pub mod api;
mod api_files;
pub mod auth;
pub mod conn;
pub mod console;
pub mod device;
pub mod readers;
pub mod server;
pub mod tls;
pub mod views;

use crate::error::Error;

/// The HTTP status for a domain error: decided here and nowhere else.
pub fn status_for(e: &Error) -> u16 {
    match e {
        Error::NotFound { .. } => 404,
        Error::Conflict(_) | Error::NeedsConfirmation { .. } => 409,
        Error::Invalid(_) => 422,
        Error::Unauthorized => 401,
        Error::Forbidden(_) => 403,
        Error::TooManyAttempts(_) => 429,
        Error::MethodNotAllowed(_) => 405,
        Error::Io { .. } | Error::Db(_) | Error::Schema(_) | Error::Config(_) => 500,
    }
}

/// The message shown for an error: the error itself for 4xx, a generic sentence for 5xx
/// (whose details go to the log).
pub fn public_message(e: &Error) -> String {
    if status_for(e) >= 500 {
        log::error!("{e}");
        "internal error; the server log has the details".into()
    } else {
        e.to_string()
    }
}
