//! Submitted forms, URL-encoded or multipart, read once into one shape so the CSRF check and
//! the handlers treat both alike. Uploaded files keep their field name, file name and bytes.

use std::io::Read;

use rouille::Request;

use crate::error::{Error, Result};

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
}

impl Form {
    /// Reads the body of a POST (the connection loop has bounded its size).
    pub fn read(req: &Request) -> Result<Form> {
        let content_type = req
            .header("Content-Type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            return Form::read_multipart(req);
        }
        let fields = rouille::input::post::raw_urlencoded_post_input(req)
            .map_err(|e| Error::invalid("form", format!("cannot read the form: {e}")))?;
        Ok(Form {
            fields,
            files: Vec::new(),
        })
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

    /// Every value of a repeated field (checkboxes of one name), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
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
            files: Vec::new(),
        }
    }
}

/// Browsers on Windows may send a full path as the file name: keep its last part.
fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_string()
}
