//! The domain error: what callers must tell apart (not found, conflict, invalid input with
//! the field named, unauthorized, forbidden), plus wrappers for the lower layers. How each
//! variant becomes an HTTP status is decided in one place, `http::status_for`.

use std::fmt;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem with one field of an input: the field (or CSV column, or config key path)
/// and what is wrong with it, phrased so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{}", join_fields(.0))]
    Invalid(Vec<FieldError>),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts; retry after this many seconds.
    #[error("too many failed attempts; try again in {0} seconds")]
    TooManyAttempts(u64),
    /// The server is busy with this kind of work (password checks); retry after this many
    /// seconds.
    #[error("the server is busy; try again in {0} seconds")]
    Busy(u64),
    /// A service the request needs is unreachable (the directory server at sign-in); the
    /// message says which, and holds no secret.
    #[error("{0}")]
    Unavailable(String),
    /// The resource exists but not with this method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The action would lock devices out: it needs an explicit confirmation (CLI `--yes`;
    /// a UI shows `message` and asks). Nothing was changed.
    #[error("{message}")]
    NeedsConfirmation {
        devices: usize,
        message: String,
        /// Each phone the action affects, with why.
        phones: Vec<Affected>,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Schema(String),
    #[error("{0}")]
    Config(String),
}

fn join_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// An invalid-input error for a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Wraps an I/O error with the file or action it concerns.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// A phone an action would affect, and how, for the count an admin confirms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Affected {
    pub mac: String,
    pub reason: String,
}
