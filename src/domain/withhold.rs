//! Serving a file without its secrets (docs/design.md §6.4, "secrets withheld until the
//! device proves itself"): every attribute a secret parameter names is removed from a
//! rendered file, so the phone still boots on the rest and keeps whatever it had for the
//! secret rather than being handed an empty value. Pure; the provisioning cache calls it
//! for requests that did not prove they are the device.

use super::polycom::params;

/// Whether `name = value` is left out of what a request without proof gets: every secret
/// parameter but the provisioning password the state machine delivers (`delivered`: the
/// device's own password while it enrols, or Auto-Sync's account password, which a phone
/// not yet enrolled must follow or be locked out when its grace window closes), under
/// whichever name its family uses.
pub fn withheld(name: &str, value: &str, delivered: Option<&str>) -> bool {
    params::is_secret(name)
        && !(super::provstate::is_credential(name) && delivered.is_some_and(|p| p == value))
}

/// A rendered file with every secret parameter (`params::is_secret`) left out: the
/// attribute is removed, so the phone keeps what it has rather than being handed an empty
/// password. The provisioning password the state machine delivers (`withheld`) stays. A
/// file that is not well-formed XML cannot be filtered and is replaced by an empty
/// configuration.
pub fn withhold_secrets(bytes: &[u8], delivered: Option<&str>) -> Vec<u8> {
    remove_params(bytes, |name, value| withheld(name, value, delivered)).0
}

/// A file with every parameter the state machine owns left out (`machine::owned`, I6: stored
/// data from before that carries one is never served with it), and the names left out.
pub fn strip_owned(bytes: &[u8]) -> (Vec<u8>, Vec<String>) {
    if super::regress::on(super::regress::Defect::OwnedInProfile) {
        return (bytes.to_vec(), Vec::new());
    }
    remove_params(bytes, |name, _| super::machine::owned(name))
}

/// A file with every attribute `remove` names left out (with the whitespace before it), and
/// the names removed. A file that is not well-formed XML cannot be filtered and is replaced
/// by an empty configuration.
fn remove_params(bytes: &[u8], remove: impl Fn(&str, &str) -> bool) -> (Vec<u8>, Vec<String>) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return (EMPTY_CONFIG.to_vec(), Vec::new());
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return (EMPTY_CONFIG.to_vec(), Vec::new());
    };
    let mut removed = Vec::new();
    let mut ranges: Vec<std::ops::Range<usize>> = doc
        .descendants()
        .flat_map(|n| n.attributes())
        .filter(|a| remove(a.name(), a.value()))
        .map(|a| {
            removed.push(a.name().to_string());
            a.range()
        })
        .collect();
    if ranges.is_empty() {
        return (bytes.to_vec(), removed);
    }
    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for r in ranges {
        if r.start <= r.end && r.end <= out.len() {
            // The whitespace before the attribute goes with it.
            let start = out[..r.start]
                .trim_end_matches([' ', '\t', '\r', '\n'])
                .len();
            out.replace_range(start..r.end, "");
        }
    }
    (out.into_bytes(), removed)
}

/// What a phone gets instead of a file whose secrets cannot be filtered.
const EMPTY_CONFIG: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<PHONE_CONFIG/>\n";

/// Configuration text for display, with the value of every secret parameter's attribute
/// (`name="value"`, `params::is_secret`) replaced by `mask`. A scan of the text, not a
/// parse, so a file that is not well-formed XML (a preview of a broken template) is masked
/// too. Passwords embedded in addresses are masked as well.
pub fn mask_secret_values(text: &str, mask: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        let quote = bytes[i + 1];
        if bytes[i] != b'=' || (quote != b'"' && quote != b'\'') {
            i += 1;
            continue;
        }
        let name_start = text[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
            .map_or(0, |p| p + 1);
        let value_start = i + 2;
        let Some(len) = text[value_start..].find(quote as char) else {
            break;
        };
        let name = &text[name_start..i];
        if len > 0 && super::polycom::params::is_secret(name) {
            out.push_str(&text[copied..value_start]);
            out.push_str(mask);
            copied = value_start + len;
        }
        i = value_start + len + 1;
    }
    out.push_str(&text[copied..]);
    super::provserver::mask_password(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_for_display_even_in_broken_files() {
        let text = "<c reg.1.auth.password=\"S1\" up.x='1' device.prov.password='S2' reg.2.auth.password=\"\"\n<broken a.password=\"S3\"";
        let shown = mask_secret_values(text, "***");
        for s in ["S1", "S2", "S3"] {
            assert!(!shown.contains(s), "{shown}");
        }
        assert!(
            shown.contains("up.x='1'") && shown.contains("reg.2.auth.password=\"\""),
            "{shown}"
        );
    }

    #[test]
    fn secret_attributes_go_and_everything_else_stays() {
        let file = br#"<?xml version="1.0"?>
<polycomConfig reg.1.address="1001" reg.1.auth.password="line-secret"
  up.welcomeSoundEnabled="0" device.prov.password="acct" prov.x.password="p">
  <x voIpProt.server.1.address="sip.example.com" reg.2.auth.password="two"/>
</polycomConfig>
"#;
        let out = String::from_utf8(withhold_secrets(file, None)).expect("utf8");
        for gone in ["line-secret", "acct", "\"p\"", "two"] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
        for kept in [
            "reg.1.address=\"1001\"",
            "up.welcomeSoundEnabled",
            "sip.example.com",
        ] {
            assert!(out.contains(kept), "{kept}: {out}");
        }
        roxmltree::Document::parse(&out).expect("still XML");
    }

    #[test]
    fn the_delivered_password_stays_only_as_the_provisioning_password() {
        // Auto-Sync's account password: kept as device.prov.password, never under a SIP
        // parameter that happens to have the same value.
        let file = "<c device.prov.password=\"acct-2\" reg.1.auth.password=\"acct-2\"/>";
        let out =
            String::from_utf8(withhold_secrets(file.as_bytes(), Some("acct-2"))).expect("utf8");
        assert!(out.contains("device.prov.password=\"acct-2\""), "{out}");
        assert!(!out.contains("reg.1.auth.password"), "{out}");
    }

    #[test]
    fn the_devices_own_password_stays_while_it_enrols() {
        let own = "Zq7wE3pXn4kR8sT2vB6yH9jC5mL1dF0gA3uN";
        let file = format!(
            "<c device.prov.user=\"0004f2000001\" device.prov.password=\"{own}\" reg.1.auth.password=\"x\"/>"
        );
        let out = String::from_utf8(withhold_secrets(file.as_bytes(), Some(own))).expect("utf8");
        assert!(
            out.contains(own) && !out.contains("reg.1.auth.password"),
            "{out}"
        );
    }

    #[test]
    fn a_file_that_cannot_be_filtered_is_replaced_by_an_empty_configuration() {
        assert_eq!(
            withhold_secrets(b"reg.1.auth.password=secret", None),
            EMPTY_CONFIG
        );
        assert_eq!(withhold_secrets(&[0xff, 0xfe], None), EMPTY_CONFIG);
        let clean = b"<c a=\"1\"/>";
        assert_eq!(withhold_secrets(clean, None), clean.to_vec());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever the attributes and values, no secret value survives and every other
        /// attribute does.
        #[test]
        fn no_secret_value_survives(
            attrs in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::strategy::Just("reg.1.auth.password".to_string()),
                        proptest::strategy::Just("device.prov.password".to_string()),
                        proptest::strategy::Just("voice.x.Password".to_string()),
                        "[a-z]{1,8}\\.[a-z]{1,8}",
                    ],
                    "[A-Za-z0-9 &<>'\"]{0,12}",
                ),
                0..8,
            )
        ) {
            let mut xml = String::from("<polycomConfig");
            let mut seen = std::collections::BTreeSet::new();
            for (i, (name, value)) in attrs.iter().enumerate() {
                // Unique names (XML requires it), the secret suffix kept.
                let name = format!("x{i}.{name}");
                if !seen.insert(name.clone()) {
                    continue;
                }
                let escaped = value
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;");
                xml.push_str(&format!(" {name}=\"S{i}{escaped}\""));
            }
            xml.push_str("/>");
            let out = String::from_utf8(withhold_secrets(xml.as_bytes(), None)).expect("utf8");
            let doc = roxmltree::Document::parse(&out).expect("still XML");
            let kept: Vec<(String, String)> = doc
                .root_element()
                .attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect();
            for (name, _) in &kept {
                proptest::prop_assert!(!params::is_secret(name), "{name} kept in {out}");
            }
            if attrs.iter().any(|(n, _)| n.ends_with("assword")) {
                proptest::prop_assert!(secret_count(&xml) > 0, "{xml}");
            }
            let expected = xml_attr_count(&xml) - secret_count(&xml);
            proptest::prop_assert_eq!(kept.len(), expected);
        }
    }

    fn xml_attr_count(xml: &str) -> usize {
        roxmltree::Document::parse(xml)
            .map(|d| d.root_element().attributes().count())
            .unwrap_or(0)
    }

    fn secret_count(xml: &str) -> usize {
        roxmltree::Document::parse(xml)
            .map(|d| {
                d.root_element()
                    .attributes()
                    .filter(|a| params::is_secret(a.name()))
                    .count()
            })
            .unwrap_or(0)
    }
}
