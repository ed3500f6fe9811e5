//! Subscribers: the ZTP guide's "customer contact profile", a reference ID with contact fields
//! to which associated devices are linked.
//!
//! The reference ID is mandatory, unique, and 4 to 20 letters and digits. A subscriber
//! without devices yet is a *partial* association and expires after a configured time; the
//! first device makes it *complete*.

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError, Result};

/// The contact fields of the Add Personal Information page, in its order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriberInput {
    pub reference_id: String,
    pub company: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub email: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country_code: String,
}

/// A stored subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscriber {
    pub id: i64,
    #[serde(flatten)]
    pub fields: SubscriberInput,
    /// `partial` (no device yet) or `complete`.
    pub status: String,
    pub owner_company: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub devices: i64,
}

/// Checks a reference ID: 4 to 20 letters and digits (the ZTP guide).
pub fn check_reference_id(field: &str, id: &str, p: &mut Vec<FieldError>) {
    let n = id.chars().count();
    if n == 0 {
        p.push(FieldError::new(field, "is mandatory"));
    } else if !(4..=20).contains(&n) || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        p.push(FieldError::new(
            field,
            format!("`{id}` must be 4 to 20 letters and digits"),
        ));
    }
}

impl SubscriberInput {
    /// The input with spaces trimmed around every field.
    pub fn trimmed(&self) -> SubscriberInput {
        let t = |s: &String| s.trim().to_string();
        SubscriberInput {
            reference_id: t(&self.reference_id),
            company: t(&self.company),
            first_name: t(&self.first_name),
            last_name: t(&self.last_name),
            phone: t(&self.phone),
            email: t(&self.email),
            street: t(&self.street),
            city: t(&self.city),
            state: t(&self.state),
            zip: t(&self.zip),
            country_code: t(&self.country_code),
        }
    }

    /// Every problem, each naming its field.
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        check_reference_id("reference_id", &self.reference_id, &mut p);
        for (field, value, max) in [
            ("company", &self.company, 100),
            ("first_name", &self.first_name, 64),
            ("last_name", &self.last_name, 64),
            ("phone", &self.phone, 32),
            ("email", &self.email, 254),
            ("street", &self.street, 200),
            ("city", &self.city, 100),
            ("state", &self.state, 100),
            ("zip", &self.zip, 20),
            ("country_code", &self.country_code, 3),
        ] {
            if value.chars().count() > max {
                p.push(FieldError::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            } else if value.chars().any(|c| c.is_control()) {
                p.push(FieldError::new(
                    field,
                    "must not contain control characters",
                ));
            }
        }
        if !self.phone.is_empty()
            && !self
                .phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            p.push(FieldError::new(
                "phone",
                "may contain digits, spaces and + - ( ) . only",
            ));
        }
        if !self.email.is_empty() {
            let ok = self.email.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty() && host.contains('.') && !self.email.contains(char::is_whitespace)
            });
            if !ok {
                p.push(FieldError::new(
                    "email",
                    format!("`{}` is not an email address", self.email),
                ));
            }
        }
        if !self.country_code.is_empty()
            && (self.country_code.len() < 2
                || !self.country_code.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            p.push(FieldError::new(
                "country_code",
                "must be a 2- or 3-character country code (e.g. US, DE, 1)",
            ));
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_id_follows_the_seed() {
        for ok in ["ab12", "REF0001", "a1234567890123456789"] {
            let s = SubscriberInput {
                reference_id: ok.into(),
                ..Default::default()
            };
            s.validate().expect(ok);
        }
        for bad in ["", "abc", "ref-001", "a12345678901234567890", "réf1"] {
            let s = SubscriberInput {
                reference_id: bad.into(),
                ..Default::default()
            };
            let err = s.validate().expect_err(bad).to_string();
            assert!(err.starts_with("reference_id:"), "{err}");
        }
    }

    #[test]
    fn contact_fields_are_checked_by_name() {
        let s = SubscriberInput {
            reference_id: "REF1".into(),
            email: "nobody".into(),
            phone: "call me".into(),
            country_code: "X".into(),
            ..Default::default()
        };
        let err = s.validate().expect_err("bad").to_string();
        for f in ["email:", "phone:", "country_code:"] {
            assert!(err.contains(f), "{f}: {err}");
        }
    }
}
