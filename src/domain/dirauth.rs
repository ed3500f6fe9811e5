//! Rules of directory sign-in (LDAP, Active Directory) that need no network: escaping of
//! values put into search filters (RFC 4515) and DNs (RFC 4514), the user search filter,
//! comparing DNs, and which role a user's groups give. The LDAP client itself lives in
//! `actions::directory`; nothing here opens a connection.
//!
//! A user name typed on the sign-in page is never trusted inside a filter: `*`, `(`, `)`,
//! `\` and NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`, so `*` looks for a user literally
//! named `*` and `)(uid=*` cannot widen the search.

use crate::domain::users::Role;

/// The OID of Active Directory's "in chain" matching rule: membership through nested
/// groups (LDAP_MATCHING_RULE_IN_CHAIN).
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// Escapes a value for an LDAP search filter (RFC 4515, section 3): `*`, `(`, `)`, `\` and
/// NUL as `\XX`; every other byte as it is (filters are UTF-8).
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for an attribute value of a DN (RFC 4514, section 2.4): `,`, `+`, `"`,
/// `\`, `<`, `>`, `;` and `=` with a backslash, NUL as `\00`, a leading `#` or space and a
/// trailing space with a backslash.
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

/// The filter that finds the user `username` by `attribute` (`uid`, `sAMAccountName`),
/// combined with the optional extra filter `extra` (e.g. `(objectClass=person)`).
pub fn user_filter(attribute: &str, username: &str, extra: &str) -> String {
    let one = format!("({attribute}={})", escape_filter_value(username));
    if extra.trim().is_empty() {
        one
    } else {
        format!("(&{one}{})", extra.trim())
    }
}

/// The filter that is true on a user entry that is a member of `group_dn`, directly or
/// through nested groups (Active Directory's in-chain rule on `memberOf`).
pub fn nested_member_filter(group_dn: &str) -> String {
    format!("(memberOf:{IN_CHAIN}:={})", escape_filter_value(group_dn))
}

/// A DN in a form two spellings of the same DN share: lower case, no spaces around `,`
/// and `=` (directories return `memberOf` values spelt as they were written).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    // After an unescaped `,` or `=`: spaces are dropped.
    let mut after_separator = false;
    for c in dn.trim().chars() {
        if escaped {
            out.extend(c.to_lowercase());
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                after_separator = false;
                out.push(c);
            }
            ',' | '=' => {
                while out.ends_with(' ') && !out.ends_with("\\ ") {
                    out.pop();
                }
                out.push(c);
                after_separator = true;
            }
            ' ' if after_separator => {}
            c => {
                after_separator = false;
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

/// One mapping of the configuration: members of `group` sign in with `role` (and
/// `company`, for installers and providers limited to one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRole {
    pub group: String,
    pub role: Role,
    pub company: String,
    /// The account's slug the role is for; empty: every account.
    pub account: String,
}

/// The role a user gets from the groups they are a member of: the first mapping, in the
/// configuration's order, whose group is among `member_of`. `None`: no mapped group, the
/// user may not sign in.
pub fn role_for<'a>(mappings: &'a [GroupRole], member_of: &[String]) -> Option<&'a GroupRole> {
    let theirs: Vec<String> = member_of.iter().map(|g| normalize_dn(g)).collect();
    mappings
        .iter()
        .find(|m| theirs.contains(&normalize_dn(&m.group)))
}

/// The accounts a user acts in from their groups: empty when the deciding mapping
/// (`role_for`) names no account (every account, with its role); else every mapping the
/// user is a member of that names an account, the first per account, as `(slug, role)`.
pub fn accounts_for(mappings: &[GroupRole], member_of: &[String]) -> Vec<(String, Role)> {
    match role_for(mappings, member_of) {
        Some(m) if !m.account.is_empty() => {}
        _ => return Vec::new(),
    }
    let theirs: Vec<String> = member_of.iter().map(|g| normalize_dn(g)).collect();
    let mut out: Vec<(String, Role)> = Vec::new();
    for m in mappings {
        if !m.account.is_empty()
            && theirs.contains(&normalize_dn(&m.group))
            && !out.iter().any(|(a, _)| *a == m.account)
        {
            out.push((m.account.clone(), m.role));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_escape_the_five_special_characters() {
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value(")("), "\\29\\28");
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("x\0y"), "x\\00y");
        assert_eq!(escape_filter_value("kim.o'neil@acme"), "kim.o'neil@acme");
        assert_eq!(escape_filter_value("Jörg"), "Jörg");
        assert_eq!(
            user_filter("uid", "*)(uid=*", ""),
            "(uid=\\2a\\29\\28uid=\\2a)"
        );
        assert_eq!(
            user_filter("sAMAccountName", "kim", "(objectClass=user)"),
            "(&(sAMAccountName=kim)(objectClass=user))"
        );
    }

    #[test]
    fn dn_values_escape_per_rfc_4514() {
        assert_eq!(escape_dn_value("Smith, John"), "Smith\\, John");
        assert_eq!(escape_dn_value("a+b=c"), "a\\+b\\=c");
        assert_eq!(escape_dn_value("\"q\"<>;\\"), "\\\"q\\\"\\<\\>\\;\\\\");
        assert_eq!(escape_dn_value("#x"), "\\#x");
        assert_eq!(escape_dn_value("x#"), "x#");
        assert_eq!(escape_dn_value(" lead and trail "), "\\ lead and trail\\ ");
        assert_eq!(escape_dn_value("nul\0"), "nul\\00");
        assert_eq!(escape_dn_value("plain"), "plain");
    }

    #[test]
    fn nested_membership_uses_the_in_chain_rule_with_the_group_escaped() {
        assert_eq!(
            nested_member_filter("CN=Phone Admins (EU),OU=Groups,DC=corp,DC=example"),
            "(memberOf:1.2.840.113556.1.4.1941:=CN=Phone Admins \\28EU\\29,OU=Groups,DC=corp,DC=example)"
        );
    }

    #[test]
    fn dns_compare_without_case_and_spaces_around_separators() {
        assert_eq!(
            normalize_dn(" CN=Phone Admins, OU=Groups ,DC = corp"),
            "cn=phone admins,ou=groups,dc=corp"
        );
        assert_eq!(normalize_dn("cn=a\\, b,dc=x"), "cn=a\\, b,dc=x");
    }

    #[test]
    fn the_first_mapped_group_gives_the_role_and_no_mapped_group_none() {
        let m = vec![
            GroupRole {
                group: "cn=zt-admins,ou=groups,dc=example".into(),
                role: Role::Admin,
                company: String::new(),
                account: String::new(),
            },
            GroupRole {
                group: "cn=zt-installers,ou=groups,dc=example".into(),
                role: Role::Installer,
                company: "acme".into(),
                account: String::new(),
            },
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            role_for(&m, &groups(&["CN=zt-installers,OU=groups,DC=example"]))
                .map(|g| (g.role, g.company.as_str())),
            Some((Role::Installer, "acme"))
        );
        assert_eq!(
            role_for(
                &m,
                &groups(&[
                    "cn=zt-installers,ou=groups,dc=example",
                    "cn=zt-admins,ou=groups,dc=example"
                ])
            )
            .map(|g| g.role),
            Some(Role::Admin)
        );
        assert!(role_for(&m, &groups(&["cn=others,dc=example"])).is_none());
        assert!(role_for(&m, &[]).is_none());
    }

    #[test]
    fn groups_naming_accounts_give_those_accounts_only() {
        let m = |group: &str, role: Role, account: &str| GroupRole {
            group: group.into(),
            role,
            company: String::new(),
            account: account.into(),
        };
        let maps = [
            m("cn=branch-admins,dc=x", Role::Admin, "branch"),
            m("cn=branch-viewers,dc=x", Role::Viewer, "branch"),
            m("cn=hq-viewers,dc=x", Role::Viewer, "hq"),
            m("cn=everyone,dc=x", Role::Viewer, ""),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            accounts_for(
                &maps,
                &groups(&[
                    "cn=hq-viewers,dc=x",
                    "cn=branch-viewers,dc=x",
                    "cn=branch-admins,dc=x"
                ])
            ),
            vec![("branch".into(), Role::Admin), ("hq".into(), Role::Viewer)]
        );
        // The deciding mapping names no account: every account, with its role.
        assert!(accounts_for(&maps, &groups(&["cn=everyone,dc=x"])).is_empty());
        assert!(accounts_for(&maps, &[]).is_empty());
    }
}
