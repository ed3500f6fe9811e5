//! The `[directory]` section: console sign-in against an LDAP server or Active Directory
//! (off by default). Only the shape and the static checks live here; `actions::directory`
//! talks to the server. The service account's password is never in this file: it is read
//! from `bind_password_file` when it is needed, so it shows in no configuration dump, log,
//! error or command line.

use std::path::PathBuf;

use serde::Deserialize;

use super::positive;
use crate::domain::dirauth::GroupRole;
use crate::domain::users::{self, Role};
use crate::error::FieldError;

/// `[directory]`: sign-in of console users with their directory account.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// Sign users in against the directory. Users created with `zerotouch user add` (or the
    /// console) keep signing in with their local password, even when the directory is down
    /// (break-glass). Default `false`.
    pub enabled: bool,
    /// The server: `ldaps://host:636`, or `ldap://host:389` with `starttls = true`. Plain
    /// LDAP without StartTLS is refused: passwords would travel in clear. Default empty.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent. Default
    /// `false`.
    pub starttls: bool,
    /// PEM file of the CA (or CAs) that issued the directory server's certificate. Empty:
    /// the system's trusted CAs. Default empty.
    pub ca_file: PathBuf,
    /// DN of the service account that searches for users (e.g.
    /// `cn=zerotouch,ou=services,dc=example,dc=com`, or `zerotouch@corp.example.com` for
    /// Active Directory). Empty: search anonymously. Default empty.
    pub bind_dn: String,
    /// File holding the service account's password (its first line), readable by the
    /// service user only (mode 0640, `root:zerotouch`). Read at every directory sign-in, so
    /// a new password needs no restart. Default empty.
    pub bind_password_file: PathBuf,
    /// Where users are searched (subtree), e.g. `ou=people,dc=example,dc=com`. Default
    /// empty.
    pub user_base: String,
    /// The attribute holding the name users type: `uid` (OpenLDAP) or `sAMAccountName`
    /// (Active Directory). Default `uid`.
    pub user_attribute: String,
    /// An extra filter every user must match, e.g. `(objectClass=person)`, or for Active
    /// Directory `(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`
    /// to leave out disabled accounts. Default empty: none.
    pub user_filter: String,
    /// The user attribute listing the groups a user is a member of. Default `memberOf`.
    pub group_attribute: String,
    /// Follow nested groups with Active Directory's in-chain matching rule
    /// (1.2.840.113556.1.4.1941): a member of a group that is itself a member of a mapped
    /// group gets that group's role. Active Directory only. Default `false`.
    pub nested_groups: bool,
    /// Seconds to wait for the connection and for each operation; past it the directory
    /// counts as unavailable. Default `5`.
    pub timeout_secs: u64,
    /// Which groups may sign in, and with which role: the first entry whose group the user
    /// is a member of decides — when it names an account, every entry the user is a member
    /// of that names one gives its account and role (the first per account), and the user
    /// acts in those accounts only. A user in none of them is refused. Default none.
    pub groups: Vec<GroupMapping>,
}

/// `[[directory.groups]]`: members of `group` sign in with `role`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// The group's DN, as the directory spells it in `memberOf` (case and spaces after
    /// commas do not matter).
    pub group: String,
    /// `admin`, `provider`, `installer` or `viewer`.
    pub role: String,
    /// The company of installers (required) and of providers limited to one company.
    #[serde(default)]
    pub company: String,
    /// The account (its slug) the role is for; empty: every account. Default empty.
    #[serde(default)]
    pub account: String,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            enabled: false,
            url: String::new(),
            starttls: false,
            ca_file: PathBuf::new(),
            bind_dn: String::new(),
            bind_password_file: PathBuf::new(),
            user_base: String::new(),
            user_attribute: "uid".into(),
            user_filter: String::new(),
            group_attribute: "memberOf".into(),
            nested_groups: false,
            timeout_secs: 5,
            groups: Vec::new(),
        }
    }
}

impl DirectoryConfig {
    /// The group mappings in domain terms (roles checked by `validate`).
    pub fn mappings(&self) -> Vec<GroupRole> {
        self.groups
            .iter()
            .filter_map(|g| {
                Some(GroupRole {
                    group: g.group.clone(),
                    role: Role::parse(&g.role).ok()?,
                    company: g.company.trim().to_string(),
                    account: g.account.trim().to_string(),
                })
            })
            .collect()
    }

    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        positive(p, "directory.timeout_secs", self.timeout_secs);
        let attr_ok =
            |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !attr_ok(&self.user_attribute) {
            p.push(FieldError::new(
                "directory.user_attribute",
                "must be an attribute name (letters, digits, `-`)",
            ));
        }
        if !attr_ok(&self.group_attribute) {
            p.push(FieldError::new(
                "directory.group_attribute",
                "must be an attribute name (letters, digits, `-`)",
            ));
        }
        let f = self.user_filter.trim();
        let parenthesised = f.starts_with('(') && f.ends_with(')');
        if !f.is_empty() && !parenthesised {
            p.push(FieldError::new(
                "directory.user_filter",
                "must be an LDAP filter in parentheses, e.g. `(objectClass=person)`",
            ));
        }
        for (i, g) in self.groups.iter().enumerate() {
            let slug = g.account.trim();
            if !slug.is_empty()
                && !slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                p.push(FieldError::new(
                    format!("directory.groups[{i}].account"),
                    "must be an account's slug (lowercase letters, digits, `-`)",
                ));
            }
            if g.group.trim().is_empty() {
                p.push(FieldError::new(
                    format!("directory.groups[{i}].group"),
                    "must be a group DN",
                ));
            }
            match Role::parse(&g.role) {
                Ok(role) => {
                    let mut q = Vec::new();
                    users::check_company(role, &g.company, &mut q);
                    p.extend(q.into_iter().map(|e| {
                        FieldError::new(format!("directory.groups[{i}].company"), e.message)
                    }));
                }
                Err(_) => p.push(FieldError::new(
                    format!("directory.groups[{i}].role"),
                    format!(
                        "`{}` is not one of admin, provider, installer, viewer",
                        g.role
                    ),
                )),
            }
        }
        if !self.enabled {
            return;
        }
        if self.url.starts_with("ldaps://") {
            if self.starttls {
                p.push(FieldError::new(
                    "directory.starttls",
                    "is for ldap:// addresses; ldaps:// is TLS from the start",
                ));
            }
        } else if self.url.starts_with("ldap://") {
            if !self.starttls {
                p.push(FieldError::new(
                    "directory.url",
                    "ldap:// sends passwords in clear: use ldaps:// or set starttls = true",
                ));
            }
        } else {
            p.push(FieldError::new(
                "directory.url",
                "must start with ldaps:// (or ldap:// with starttls = true)",
            ));
        }
        if self.user_base.trim().is_empty() {
            p.push(FieldError::new(
                "directory.user_base",
                "must be set: the DN under which users are searched",
            ));
        }
        if !self.bind_dn.is_empty() && self.bind_password_file.as_os_str().is_empty() {
            p.push(FieldError::new(
                "directory.bind_password_file",
                "must be set with bind_dn: the file holding the service account's password",
            ));
        }
        if self.groups.is_empty() {
            p.push(FieldError::new(
                "directory.groups",
                "must map at least one group to a role: users in no mapped group cannot sign in",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn plain_ldap_without_starttls_and_unknown_roles_are_refused() {
        let text = r#"
            [directory]
            enabled = true
            url = "ldap://dc1.corp.example:389"
            user_base = "dc=corp"
            bind_dn = "cn=svc,dc=corp"
            groups = [{ group = "cn=a,dc=corp", role = "boss" },
                      { group = "cn=b,dc=corp", role = "installer" }]
        "#;
        let problems = Config::parse(text).expect_err("refused");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for f in [
            "directory.url",
            "directory.bind_password_file",
            "directory.groups[0].role",
            "directory.groups[1].company",
        ] {
            assert!(fields.contains(&f), "{f} not in {problems:?}");
        }
    }

    #[test]
    fn an_ldaps_directory_with_groups_parses() {
        let text = r#"
            [directory]
            enabled = true
            url = "ldaps://dc1.corp.example"
            user_base = "ou=people,dc=corp"
            user_attribute = "sAMAccountName"
            nested_groups = true
            groups = [{ group = "cn=zt admins,dc=corp", role = "admin" }]
        "#;
        let c = Config::parse(text).expect("parses");
        assert_eq!(c.directory.mappings().len(), 1);
    }
}
