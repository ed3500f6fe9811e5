//! A device's uploads read back for the console (logs, overrides, call lists, contacts):
//! a file is found only among the uploads recorded for that device (`db::access::
//! list_uploads`), by its exact name — a name from a URL is compared, never joined to a path
//! — and opened without following symbolic links. Reads only; storing uploads is
//! `http::device::uploads` with the accounting of `actions::uploads`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::db::access;
use crate::domain::devicepath::UploadKind;
use crate::domain::mac::Mac;
use crate::error::{Error, Result};

/// One recorded upload of a device and where it is stored.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub kind: UploadKind,
    pub file_name: String,
    pub size: i64,
    pub updated_at: i64,
    path: PathBuf,
}

/// The start of a stored upload's text or its last `max` bytes.
#[derive(Debug, Clone)]
pub struct Tail {
    pub bytes: Vec<u8>,
    /// The file's size when read.
    pub size: u64,
    /// Only the end of the file is in `bytes`.
    pub cut: bool,
}

/// Whether `name` could name a stored upload at all: one plain file name.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

/// The upload `name` of `mac`, if one is recorded under that exact name; `None` otherwise
/// (including every name that is not a plain file name).
pub fn find(
    conn: &Connection,
    uploads_dir: &Path,
    mac: &Mac,
    name: &str,
) -> Result<Option<Uploaded>> {
    if !plain(name) {
        return Ok(None);
    }
    let Some(row) = access::list_uploads(conn, mac.as_str())?
        .into_iter()
        .find(|u| u.file_name == name)
    else {
        return Ok(None);
    };
    let Some(kind) = UploadKind::ALL.into_iter().find(|k| k.dir() == row.kind) else {
        return Ok(None);
    };
    let path = uploads_dir
        .join(mac.as_str())
        .join(kind.dir())
        .join(&row.file_name);
    Ok(Some(Uploaded {
        kind,
        file_name: row.file_name,
        size: row.size,
        updated_at: row.updated_at,
        path,
    }))
}

impl Uploaded {
    /// The stored file, opened without following a symbolic link; `None` when it is gone
    /// (recorded but deleted meanwhile) or is not a regular file.
    pub fn open(&self) -> Result<Option<File>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound) => return Ok(None),
            // O_NOFOLLOW on a link: ELOOP.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
            Err(e) => return Err(Error::io(format!("opening {}", self.path.display()), e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        Ok(meta.is_file().then_some(file))
    }

    /// The whole file, or its last `max` bytes when it is longer; `None` when it is gone.
    pub fn tail(&self, max: u64) -> Result<Option<Tail>> {
        let Some(mut file) = self.open()? else {
            return Ok(None);
        };
        let io = |e| Error::io(format!("reading {}", self.path.display()), e);
        let size = file.metadata().map_err(io)?.len();
        let cut = size > max;
        if cut {
            file.seek(SeekFrom::Start(size - max)).map_err(io)?;
        }
        let mut bytes = Vec::with_capacity(size.min(max) as usize);
        file.take(max).read_to_end(&mut bytes).map_err(io)?;
        Ok(Some(Tail { bytes, size, cut }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_can_name_an_upload() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\0b"] {
            assert!(!plain(bad), "{bad:?}");
        }
        assert!(plain("0004f2000001-app.log"));
    }
}
