//! Submitted forms, URL-encoded or multipart, read once into one shape so the CSRF check and
//! the handlers treat both alike. Uploaded files keep their field name, file name and bytes.
//!
//! A multipart body the connection loop streamed to a temporary file (firmware releases,
//! too large for memory) is parsed from that file: its text fields are read into memory
//! (64 KiB each at most), its files are copied to temporary files of their own beside it,
//! which are removed when the form is dropped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rouille::Request;

use crate::error::{Error, Result};
use crate::http::engine::conn::UPLOAD_HEADER;

/// Most bytes of one text field of a streamed form.
const STREAMED_FIELD: u64 = 64 * 1024;

/// A file of a streamed form, on disk; removed when the last copy of the form goes.
#[derive(Debug)]
pub struct StoredFile {
    pub field: String,
    pub file_name: String,
    pub path: PathBuf,
    pub size: u64,
}

impl Drop for StoredFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An uploaded file of a multipart form.
#[derive(Debug, Clone)]
pub struct Upload {
    pub field: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// The fields (and files) of a submitted form.
#[derive(Debug, Clone, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
    pub files: Vec<Upload>,
    /// Files of a form whose body was streamed to disk.
    pub stored: Vec<Arc<StoredFile>>,
}

impl Form {
    /// Reads the body of a POST (the connection loop has bounded its size).
    pub fn read(req: &Request) -> Result<Form> {
        let content_type = req
            .header("Content-Type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(body) = req.header(UPLOAD_HEADER) {
            // The boundary is case-sensitive: take it from the header as sent.
            return Form::read_streamed(Path::new(body), req.header("Content-Type").unwrap_or(""));
        }
        if content_type.starts_with("multipart/form-data") {
            return Form::read_multipart(req);
        }
        let fields = rouille::input::post::raw_urlencoded_post_input(req)
            .map_err(|e| Error::invalid("form", format!("cannot read the form: {e}")))?;
        Ok(Form {
            fields,
            ..Default::default()
        })
    }

    /// Parses a multipart body the loop streamed to `body`, copying its files beside it.
    fn read_streamed(body: &Path, content_type: &str) -> Result<Form> {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::invalid("form", "a file upload must be a multipart form"))?;
        let file = std::fs::File::open(body)
            .map_err(|e| Error::io(format!("reading {}", body.display()), e))?;
        let mut mp =
            multipart::server::Multipart::with_body(std::io::BufReader::new(file), boundary);
        let dir = body.parent().unwrap_or(Path::new("."));
        let mut form = Form::default();
        let bad = |e: std::io::Error| Error::invalid("form", format!("cannot read the form: {e}"));
        while let Some(mut field) = mp.read_entry().map_err(bad)? {
            let name = field.headers.name.to_string();
            match field.headers.filename.clone() {
                Some(file_name) => {
                    let path = dir.join(format!(
                        ".part-{}",
                        crate::domain::account::random_token(12)
                    ));
                    let mut out = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                    // Owned from here, so an error below still removes it.
                    let mut stored = StoredFile {
                        field: name,
                        file_name: base_name(&file_name),
                        path,
                        size: 0,
                    };
                    stored.size = std::io::copy(&mut field.data, &mut out).map_err(bad)?;
                    out.flush().map_err(bad)?;
                    if !stored.file_name.is_empty() || stored.size > 0 {
                        form.stored.push(Arc::new(stored));
                    }
                }
                None => {
                    let mut bytes = Vec::new();
                    field
                        .data
                        .by_ref()
                        .take(STREAMED_FIELD + 1)
                        .read_to_end(&mut bytes)
                        .map_err(bad)?;
                    if bytes.len() as u64 > STREAMED_FIELD {
                        return Err(Error::invalid(name, "is too long"));
                    }
                    form.fields
                        .push((name, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
        Ok(form)
    }

    /// The first file of a streamed form in `field`.
    pub fn stored(&self, field: &str) -> Option<&StoredFile> {
        self.stored
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.as_ref())
    }

    /// Every value of a field that may repeat (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn read_multipart(req: &Request) -> Result<Form> {
        let mut mp = rouille::input::multipart::get_multipart_input(req)
            .map_err(|e| Error::invalid("form", format!("cannot read the form: {e}")))?;
        let mut form = Form::default();
        while let Some(mut field) = mp.next() {
            let name = field.headers.name.to_string();
            let mut bytes = Vec::new();
            field.data.read_to_end(&mut bytes).map_err(|e| {
                Error::invalid(name.clone(), format!("cannot read the upload: {e}"))
            })?;
            match field.headers.filename.clone() {
                Some(file_name) => {
                    if !file_name.is_empty() || !bytes.is_empty() {
                        form.files.push(Upload {
                            field: name,
                            file_name: base_name(&file_name),
                            bytes,
                        });
                    }
                }
                None => form
                    .fields
                    .push((name, String::from_utf8_lossy(&bytes).into_owned())),
            }
        }
        Ok(form)
    }

    /// A field's value, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), "on" | "1" | "true" | "yes")
    }

    /// The files uploaded in a field, in order.
    pub fn files(&self, field: &str) -> impl Iterator<Item = &Upload> {
        self.files.iter().filter(move |f| f.field == field)
    }

    /// A form for tests and for building inputs by hand.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Form {
        Form {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }
}

/// Browsers on Windows may send a full path as the file name: keep its last part.
fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_string()
}
