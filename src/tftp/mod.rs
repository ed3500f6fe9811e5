//! The TFTP engine: a read-only TFTP server (RFC 1350, options per RFC 2347–2349) that
//! knows nothing of provisioning. It runs whatever `Source` it is given: the source maps a
//! file name and the client's address to bytes, an open file or a refusal, and the engine
//! does the rest — the allowlist of source networks, the cap on transfers running at once,
//! option negotiation, one ephemeral UDP socket per transfer (RFC 1350's transfer IDs),
//! retransmission with a bounded number of retries and block numbers that roll over past
//! 65535 (a 50 MB image at 512-byte blocks).
//!
//! Write requests are refused with an error packet. Synchronous: one thread receives
//! requests, one thread runs each transfer. Nothing here imports the application
//! (`tests/it/layers.rs`).

mod packet;
mod server;

use std::fs::File;
use std::net::SocketAddr;

pub use packet::{ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE};
pub use server::{Handle, Settings, Stats, TftpServer};

/// What a source answers for a read request.
pub enum Content {
    /// Bytes built for this request (a rendered configuration file).
    Bytes(Vec<u8>),
    /// A file opened for reading, and its length (firmware, assets).
    File(File, u64),
}

impl Content {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File(_, n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a source does not serve a file: sent to the client in an error packet, so the
/// message must never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn not_found(message: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::FileNotFound,
            message: message.into(),
        }
    }

    pub fn denied(message: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::AccessViolation,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::Undefined,
            message: message.into(),
        }
    }
}

/// What the TFTP listener serves: called once per read request, in the transfer's own
/// thread, with the file name exactly as the client sent it.
pub trait Source: Send + Sync + 'static {
    fn open(&self, name: &str, peer: SocketAddr) -> Result<Content, Refusal>;
}
