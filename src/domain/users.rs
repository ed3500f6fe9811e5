//! Console users: roles, what each role may do, which accounts and devices it may see, and
//! password handling (argon2 hashes, one-time passwords, rules for new passwords).
//!
//! A user acts either in the whole installation (`Accounts::Installation`: every account,
//! with `User::role`; every user made before schema 17 is one) or only in given accounts,
//! each with its own role (`Accounts::Only`). `User::in_account` is the user as they act in
//! one account — their role there, and that account alone — or `None` when they have no
//! role in it; `actions::tenants` resolves every request, page and command through it, so
//! an account a user has no role in answers exactly as an account that does not exist.
//! What belongs to the installation rather than to one account (users, provisioning
//! settings, diagnostics, firmware and shared files, creating accounts, the whole
//! installation's export) needs an installation-wide admin.
//!
//! The ZTP guide's confidentiality rule is expressed once, as a `Scope`: installers see and change
//! only devices associated by their own company; providers see devices associated with
//! profiles their company created (and their own associations). Every query of the console,
//! the API and the CLI takes the scope, so no page can forget it.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Serialize;

use crate::error::{Error, FieldError, Result};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users and API tokens of others.
    Admin,
    /// Profiles and associations (ZTP's "service provider").
    Provider,
    /// Associations and Find only, limited to their own company's devices (ZTP's "reseller").
    Installer,
    /// Reads everything, changes nothing.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Provider, Role::Installer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Provider => "provider",
            Role::Installer => "installer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("`{s}` is not one of admin, provider, installer, viewer"),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// How much a role may do, for picking a scoped user's broadest role.
    fn rank(self) -> u8 {
        match self {
            Role::Admin => 3,
            Role::Provider => 2,
            Role::Installer => 1,
            Role::Viewer => 0,
        }
    }
}

/// One account a scoped user acts in, with their role there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub account_id: i64,
    pub role: Role,
}

/// Which accounts a user acts in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accounts {
    /// Every account, with `User::role`.
    #[default]
    Installation,
    /// Only these accounts, each with its own role.
    Only(Vec<Grant>),
}

impl Accounts {
    /// The role that decides what a scoped user may ask before an account is chosen: their
    /// broadest (the account's own role decides once one is, through `User::in_account`).
    pub fn broadest(grants: &[Grant]) -> Role {
        grants
            .iter()
            .map(|g| g.role)
            .max_by_key(|r| r.rank())
            .unwrap_or(Role::Viewer)
    }
}

/// Parses one `ACCOUNT=ROLE` grant as typed (CLI `--account-role`, the Users page, the
/// directory's group mapping): the account's slug and the role, the field named in errors.
pub fn parse_grant(field: &str, text: &str) -> Result<(String, Role)> {
    let Some((slug, role)) = text.split_once('=') else {
        return Err(Error::invalid(
            field,
            format!("`{text}` is not ACCOUNT=ROLE (for example `branch=installer`)"),
        ));
    };
    let slug = slug.trim();
    if slug.is_empty() {
        return Err(Error::invalid(field, format!("`{text}` names no account")));
    }
    let role = Role::parse(role.trim()).map_err(|_| {
        Error::invalid(
            field,
            format!(
                "`{}` is not one of admin, provider, installer, viewer",
                role.trim()
            ),
        )
    })?;
    Ok((slug.to_string(), role))
}

/// Things a user may ask to do; `User::require` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Find, device pages, profile list.
    Read,
    /// Create, modify, delete profiles.
    ManageProfiles,
    /// Associate, modify, copy, replace, delete devices; subscribers; bulk import.
    Associate,
    /// Users of the console.
    ManageUsers,
    /// The Diagnostics page: its findings name phones, servers and stale credentials.
    Diagnose,
    /// The firmware catalogue, shared phone assets (directory, licences, language files,
    /// wallpapers, ring tones) and clearing overrides made on phones.
    ManageAssets,
    /// Accounts, the inventory, Auto-Sync progress, exports without secrets and the audit
    /// log: they cover every device of an account, so only roles that see every device.
    ReadAccounts,
    /// Sites, device groups, memberships and policies: values that reach every device of
    /// a scope (admins, and providers that are not limited to one company).
    ManagePolicies,
    /// Device Provisioning, credentials, Auto-Sync, service addresses, re-admission,
    /// imports and exports with secrets.
    ManageAccounts,
    /// Provisioning settings, custom variables, External mode's push, and secrets in the
    /// preview.
    ManageSettings,
    /// What belongs to the whole installation: creating accounts and the installation's
    /// export and import (an installation-wide admin).
    ManageInstallation,
}

/// A signed-in user (passwords never leave `db::users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub company: String,
    pub must_change_password: bool,
    /// Every account, or only some, each with its role.
    pub accounts: Accounts,
}

/// Which associations a user may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Devices whose `owner_company` is this company.
    Company(String),
    /// Devices whose profile was created by this company, or associated by it.
    Provider(String),
}

impl User {
    /// Refuses an action the role does not allow, saying which role would.
    pub fn require(&self, action: Action) -> Result<()> {
        let ok = match action {
            Action::Read => true,
            Action::ManageProfiles => matches!(self.role, Role::Admin | Role::Provider),
            Action::Associate => {
                matches!(self.role, Role::Admin | Role::Provider | Role::Installer)
            }
            Action::ManageUsers
            | Action::Diagnose
            | Action::ManageAssets
            | Action::ManageSettings
            | Action::ManageInstallation => {
                self.role == Role::Admin && self.accounts == Accounts::Installation
            }
            Action::ManageAccounts => self.role == Role::Admin,
            Action::ReadAccounts => self.scope() == Scope::All,
            Action::ManagePolicies => {
                self.role == Role::Admin || (self.role == Role::Provider && self.company.is_empty())
            }
        };
        if ok {
            Ok(())
        } else {
            let what = match action {
                Action::Read => "read",
                Action::ManageProfiles => "manage profiles (admin or provider role needed)",
                Action::Associate => {
                    "change associations (admin, provider or installer role needed)"
                }
                Action::ManageUsers => "manage users (installation-wide admin role needed)",
                Action::Diagnose => {
                    "run and read diagnostics (installation-wide admin role needed)"
                }
                Action::ManageAssets => {
                    "change firmware, shared phone files or phone overrides (installation-wide \
                     admin role needed)"
                }
                Action::ReadAccounts => {
                    "read accounts, the inventory or the audit log (a role that sees every \
                     device needed: admin, viewer, or provider without a company)"
                }
                Action::ManagePolicies => {
                    "manage sites, groups and policies (admin, or provider without a company, \
                     needed)"
                }
                Action::ManageAccounts => {
                    "manage Device Provisioning, credentials and Auto-Sync (admin role needed)"
                }
                Action::ManageSettings => {
                    "manage provisioning settings and variables (installation-wide admin role \
                     needed)"
                }
                Action::ManageInstallation => {
                    "create accounts or export and import the whole installation \
                     (installation-wide admin role needed)"
                }
            };
            Err(Error::Forbidden(format!(
                "user `{}` ({}) may not {what}",
                self.username, self.role
            )))
        }
    }

    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Admin | Role::Viewer => Scope::All,
            Role::Installer => Scope::Company(self.company.clone()),
            Role::Provider if self.company.is_empty() => Scope::All,
            Role::Provider => Scope::Provider(self.company.clone()),
        }
    }

    /// Whether the user acts in every account.
    pub fn installation_wide(&self) -> bool {
        self.accounts == Accounts::Installation
    }

    /// The user as they act in this account: their role there and that account alone, or
    /// `None` when they have no role in it.
    pub fn in_account(&self, account_id: i64) -> Option<User> {
        match &self.accounts {
            Accounts::Installation => Some(self.clone()),
            Accounts::Only(grants) => {
                let g = grants.iter().find(|g| g.account_id == account_id)?;
                Some(User {
                    role: g.role,
                    accounts: Accounts::Only(vec![*g]),
                    ..self.clone()
                })
            }
        }
    }

    /// Whether the user has a role in this account.
    pub fn may_act_in(&self, account_id: i64) -> bool {
        match &self.accounts {
            Accounts::Installation => true,
            Accounts::Only(grants) => grants.iter().any(|g| g.account_id == account_id),
        }
    }

    /// The company recorded on what this user associates.
    pub fn owner_company(&self) -> &str {
        &self.company
    }
}

/// Checks a user name: 2 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_username(name: &str, p: &mut Vec<FieldError>) {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if !ok {
        p.push(FieldError::new(
            "username",
            "must be 2 to 64 letters, digits, `.`, `_`, `-` or `@`",
        ));
    }
}

/// Checks a new password: 10 to 128 characters, not only one kind of character.
pub fn check_password(field: &str, password: &str, p: &mut Vec<FieldError>) {
    let n = password.chars().count();
    if !(10..=128).contains(&n) {
        p.push(FieldError::new(field, "must be 10 to 128 characters"));
    } else if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(c))
    {
        p.push(FieldError::new(field, "must not repeat one character"));
    }
}

/// Checks the company of a role: installers need one (their scope is their company).
pub fn check_company(role: Role, company: &str, p: &mut Vec<FieldError>) {
    if company.len() > 100 || company.chars().any(|c| c.is_control()) {
        p.push(FieldError::new(
            "company",
            "must be at most 100 printable characters",
        ));
    } else if role == Role::Installer && company.trim().is_empty() {
        p.push(FieldError::new(
            "company",
            "installers need a company: they see only devices their company associated",
        ));
    }
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| Error::io("random salt", std::io::Error::other(e.to_string())))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::io("random salt", std::io::Error::other(e.to_string())))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::io("hashing a password", std::io::Error::other(e.to_string())))
}

/// Whether `password` matches a stored hash (constant time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Working memory of one password check, kept and reused by its caller: argon2's own
/// `verify_password` allocates and frees about 19 MiB per check, and under concurrent
/// sign-ins the allocator kept those pages (1.5 GB after 500 wrong sign-ins).
pub type HashMemory = Vec<argon2::Block>;

/// `verify_password` with caller-owned working memory (`HashMemory`, grown as the hash's
/// parameters need).
pub fn verify_password_in(password: &str, hash: &str, memory: &mut HashMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && out.len() == expected.len()
        && out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A hash that matches no known password, verified when a user name is unknown so that
/// the answer takes as long as for a known user (no user-name probing by timing).
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&one_time_password()).unwrap_or_default())
}

/// A one-time password: 16 characters from an alphabet without look-alikes.
pub fn one_time_password() -> String {
    super::account::random_token(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, company: &str) -> User {
        User {
            id: 1,
            username: "u".into(),
            role,
            company: company.into(),
            must_change_password: false,
            accounts: Accounts::Installation,
        }
    }

    #[test]
    fn a_scoped_user_acts_only_in_its_accounts_with_its_role_there() {
        let grants = vec![
            Grant {
                account_id: 2,
                role: Role::Installer,
            },
            Grant {
                account_id: 3,
                role: Role::Admin,
            },
        ];
        let u = User {
            role: Accounts::broadest(&grants),
            accounts: Accounts::Only(grants),
            ..user(Role::Viewer, "acme")
        };
        assert_eq!(u.role, Role::Admin);
        assert!(u.in_account(1).is_none());
        assert!(!u.may_act_in(1));
        let b = u.in_account(2).expect("b");
        assert_eq!(b.role, Role::Installer);
        assert!(b.may_act_in(2) && !b.may_act_in(3));
        let c = u.in_account(3).expect("c");
        assert!(c.require(Action::ManageAccounts).is_ok());
        // Installation-wide things need an installation-wide admin.
        assert!(c.require(Action::ManageUsers).is_err());
        assert!(c.require(Action::ManageSettings).is_err());
        assert!(c.require(Action::ManageInstallation).is_err());
        assert!(
            user(Role::Admin, "")
                .require(Action::ManageInstallation)
                .is_ok()
        );
        assert_eq!(
            user(Role::Viewer, "").in_account(7),
            Some(user(Role::Viewer, ""))
        );
    }

    #[test]
    fn grants_are_parsed_with_the_field_named() {
        assert_eq!(
            parse_grant("account_role", " branch = installer ").expect("grant"),
            ("branch".to_string(), Role::Installer)
        );
        for bad in ["branch", "=viewer", "branch=boss"] {
            match parse_grant("account_role", bad) {
                Err(Error::Invalid(p)) => assert_eq!(p[0].field, "account_role", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", dummy_hash()));
        assert!(!verify_password("x", "not a hash"));
        // The same answers with reused working memory, which never grows past one check's.
        let mut memory = HashMemory::new();
        for _ in 0..3 {
            assert!(verify_password_in("correct horse battery", &h, &mut memory));
            assert!(!verify_password_in("wrong", &h, &mut memory));
        }
        let blocks = memory.len();
        assert!(!verify_password_in("x", dummy_hash(), &mut memory));
        assert!(!verify_password_in("x", "not a hash", &mut memory));
        assert_eq!(memory.len(), blocks);
    }

    #[test]
    fn roles_allow_what_the_seed_says() {
        let installer = user(Role::Installer, "acme");
        assert!(installer.require(Action::Associate).is_ok());
        assert!(installer.require(Action::ManageProfiles).is_err());
        assert_eq!(installer.scope(), Scope::Company("acme".into()));
        let viewer = user(Role::Viewer, "");
        assert!(viewer.require(Action::Associate).is_err());
        assert!(viewer.require(Action::Read).is_ok());
        assert!(
            user(Role::Provider, "")
                .require(Action::ManageProfiles)
                .is_ok()
        );
        assert!(
            user(Role::Provider, "")
                .require(Action::ManageUsers)
                .is_err()
        );
    }

    #[test]
    fn accounts_and_policies_need_a_role_that_sees_every_device() {
        assert!(user(Role::Viewer, "").require(Action::ReadAccounts).is_ok());
        assert!(
            user(Role::Viewer, "")
                .require(Action::ManagePolicies)
                .is_err()
        );
        assert!(
            user(Role::Installer, "acme")
                .require(Action::ReadAccounts)
                .is_err()
        );
        assert!(
            user(Role::Provider, "acme")
                .require(Action::ReadAccounts)
                .is_err()
        );
        assert!(
            user(Role::Provider, "")
                .require(Action::ManagePolicies)
                .is_ok()
        );
        assert!(
            user(Role::Provider, "acme")
                .require(Action::ManagePolicies)
                .is_err()
        );
        assert!(
            user(Role::Provider, "")
                .require(Action::ManageAccounts)
                .is_err()
        );
        assert!(
            user(Role::Admin, "")
                .require(Action::ManageAccounts)
                .is_ok()
        );
    }

    #[test]
    fn passwords_and_names_are_checked() {
        let mut p = Vec::new();
        check_password("password", "short", &mut p);
        check_password("password", "aaaaaaaaaaaa", &mut p);
        check_username("a b", &mut p);
        check_company(Role::Installer, "", &mut p);
        assert_eq!(p.len(), 4, "{p:?}");
    }
}
