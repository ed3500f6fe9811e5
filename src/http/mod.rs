//! HTTP, in three parts that point one way:
//! - `engine`: our own HTTP/1.1 connection loop (accepting, parking idle connections, TLS,
//!   admission caps). It knows nothing of provisioning: it runs a `Service`.
//! - `device`: the endpoints phones call, their authentication and abuse limits.
//! - `admin`: the admin listener — the console, the JSON API and their views.
//!
//! Only this module knows about rouille and maud. The status of a domain error is decided
//! here, once, for both listeners.

pub mod admin;
pub mod device;
pub mod engine;

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
        Error::Busy(_) | Error::Unavailable(_) => 503,
        Error::MethodNotAllowed(_) => 405,
        Error::Io { .. } | Error::Db(_) | Error::Schema(_) | Error::Config(_) => 500,
    }
}

/// The message shown for an error: the error itself for 4xx, a generic sentence for 5xx
/// (whose details go to the log).
pub fn public_message(e: &Error) -> String {
    if status_for(e) >= 500 && !matches!(e, Error::Busy(_) | Error::Unavailable(_)) {
        log::error!("{e}");
        "internal error; the server log has the details".into()
    } else {
        e.to_string()
    }
}
