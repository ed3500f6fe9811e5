//! DHCP option 66/160 configuration an admin can paste into ISC dhcpd, Kea, dnsmasq or
//! Windows (PowerShell), pointing at an account's service address: `/` for the default
//! account, `/<slug>-<key>/` for every account. With credentials, the URL embeds the
//! account's current device credentials, which then have to be updated in DHCP after every
//! rotation (the Lens Auto-Sync page); without them, phones need credentials from somewhere else.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;

use crate::domain::account::Account;

/// Characters escaped in the user and password of a URL (RFC 3986 userinfo).
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b',')
    .add(b'\'');

/// Snippets for one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountSnippets {
    pub account: String,
    /// The URL put in option 66 and 160.
    pub url: String,
    /// Whether the URL embeds credentials.
    pub with_credentials: bool,
    /// `(dialect, text)` pairs: `isc`, `kea`, `dnsmasq`, `powershell`.
    pub snippets: Vec<(String, String)>,
}

/// The provisioning URL of an account as phones should get it from DHCP.
pub fn account_url(
    account: &Account,
    host: &str,
    port: Option<u16>,
    with_credentials: bool,
) -> String {
    let mut url = String::from("http://");
    if with_credentials && let (Some(u), Some(p)) = (&account.device_user, &account.device_password)
    {
        url.push_str(&utf8_percent_encode(u, USERINFO).to_string());
        url.push(':');
        url.push_str(&utf8_percent_encode(p, USERINFO).to_string());
        url.push('@');
    }
    if host.contains(':') && !host.starts_with('[') {
        url.push_str(&format!("[{host}]"));
    } else {
        url.push_str(host);
    }
    if let Some(port) = port.filter(|p| *p != 80) {
        url.push_str(&format!(":{port}"));
    }
    url.push_str(&if account.is_default {
        "/".to_string()
    } else {
        account.service_path()
    });
    url
}

/// Snippets for every account (the default account first).
pub fn snippets(
    accounts: &[Account],
    host: &str,
    port: Option<u16>,
    with_credentials: bool,
) -> Vec<AccountSnippets> {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by_key(|a| !a.is_default);
    let mut out = Vec::new();
    for a in sorted {
        let mut urls = vec![(a.name.clone(), account_url(a, host, port, with_credentials))];
        if a.is_default {
            // The default account also answers at its own service address.
            let mut alias = a.clone();
            alias.is_default = false;
            urls.push((
                format!("{} (service address)", a.name),
                account_url(&alias, host, port, with_credentials),
            ));
        }
        for (name, url) in urls {
            out.push(AccountSnippets {
                account: name,
                snippets: render(&url),
                url,
                with_credentials,
            });
        }
    }
    out
}

fn render(url: &str) -> Vec<(String, String)> {
    let q = url.replace('\\', "\\\\").replace('"', "\\\"");
    let isc = format!(
        "# Declare option 160 once, at the top of dhcpd.conf:\n\
         option polycom-prov code 160 = text;\n\
         # Then, in the phones' subnet (or globally):\n\
         option polycom-prov \"{q}\";\n\
         option tftp-server-name \"{q}\";\n"
    );
    let kea = format!(
        "\"option-def\": [\n  {{ \"name\": \"polycom-prov\", \"code\": 160, \"type\": \"string\" }}\n],\n\
         \"option-data\": [\n  {{ \"name\": \"polycom-prov\", \"data\": \"{k}\" }},\n  \
         {{ \"name\": \"tftp-server-name\", \"data\": \"{k}\" }}\n]\n",
        k = q.replace(',', "\\\\,")
    );
    let dnsmasq = format!("dhcp-option=160,\"{q}\"\ndhcp-option=66,\"{q}\"\n");
    let ps = url
        .replace('`', "``")
        .replace('"', "`\"")
        .replace('$', "`$");
    let powershell = format!(
        "Add-DhcpServerv4OptionDefinition -OptionId 160 -Name \"Polycom provisioning\" -Type String\n\
         Set-DhcpServerv4OptionValue -OptionId 160 -Value \"{ps}\"\n\
         Set-DhcpServerv4OptionValue -OptionId 66 -Value \"{ps}\"\n\
         # For one scope only, add: -ScopeId 10.0.20.0\n"
    );
    vec![
        ("isc".into(), isc),
        ("kea".into(), kea),
        ("dnsmasq".into(), dnsmasq),
        ("powershell".into(), powershell),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountId, UnknownDevices};

    fn account(default: bool) -> Account {
        Account {
            id: AccountId(1),
            name: "Default".into(),
            slug: "default".into(),
            service_key: "k3y".into(),
            is_default: default,
            provisioning_enabled: true,
            device_user: Some("phones".into()),
            device_password: Some("p@ss:w/rd".into()),
            credential_generation: 2,
            autosync_enabled: true,
            unknown_devices: UnknownDevices::Stage,
            default_profile_id: None,
            device_secrets: false,
            tftp_credential: false,
            ftp_factory_login: true,
            sip: Default::default(),
        }
    }

    #[test]
    fn urls_escape_credentials_and_use_the_service_path() {
        assert_eq!(
            account_url(&account(true), "prov.example.com", Some(8080), true),
            "http://phones:p%40ss%3Aw%2Frd@prov.example.com:8080/"
        );
        assert_eq!(
            account_url(&account(false), "10.0.0.5", Some(80), false),
            "http://10.0.0.5/default-k3y/"
        );
        let parsed = crate::domain::provserver::ServerUrl::parse(&account_url(
            &account(true),
            "h",
            None,
            true,
        ))
        .expect("parses");
        assert_eq!(parsed.password, "p@ss:w/rd");
    }

    #[test]
    fn every_dialect_is_there_for_the_default_account_and_its_alias() {
        let s = snippets(&[account(true)], "prov.example.com", None, false);
        assert_eq!(s.len(), 2);
        let names: Vec<&str> = s[0].snippets.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(names, vec!["isc", "kea", "dnsmasq", "powershell"]);
        assert!(s[0].snippets[3].1.contains(
            "Set-DhcpServerv4OptionValue -OptionId 160 -Value \"http://prov.example.com/\""
        ));
        assert!(
            s[0].snippets[2]
                .1
                .contains("dhcp-option=160,\"http://prov.example.com/\"")
        );
        assert!(s[1].url.ends_with("/default-k3y/"));
    }
}
