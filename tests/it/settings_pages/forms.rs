//! Helpers of the settings page tests: submit a form as the browser shows it (text inputs
//! with their values, ticked boxes, the chosen options), and find a field marked invalid.

use crate::common::*;

/// Decodes the few entities maud writes in attribute values.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The fields a browser would submit from the form posting to `action`, as shown (text
/// inputs with their values, ticked checkboxes, the selected option of each select),
/// without the CSRF token (the session adds it).
pub fn form_of(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let end = html[start..].find("</form>").expect("form end") + start;
    let form = &html[start..end];
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let close = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..close];
        if tag.starts_with("<input") {
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(name) = attr(tag, "name").filter(|n| n != "csrf") {
                let ticked = tag.contains(" checked");
                if kind != "checkbox" || ticked {
                    out.push((name, attr(tag, "value").unwrap_or_default()));
                }
            }
        } else if tag.starts_with("<select") {
            let name = attr(tag, "name").expect("select name");
            let body_end = rest.find("</select>").expect("select end");
            let body = &rest[..body_end];
            let chosen = body
                .split("<option")
                .skip(1)
                .find(|o| o.contains(" selected"))
                .or_else(|| body.split("<option").nth(1))
                .and_then(|o| attr(&format!(" {o}"), "value"))
                .unwrap_or_default();
            out.push((name, chosen));
        }
        rest = &rest[1..];
    }
    out
}

/// The form as shown, with some fields changed (or added).
pub fn with(form: &[(String, String)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = form.to_vec();
    for (k, v) in changes {
        match out.iter_mut().find(|(n, _)| n == k) {
            Some(f) => f.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    out
}

pub fn post_fields(s: &Session, path: &str, fields: &[(String, String)]) -> Resp {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    s.post(path, &pairs)
}

/// Saves the settings page with `changes` on top of what it shows.
pub fn save_settings(s: &Session, changes: &[(&str, &str)]) -> Resp {
    let page = s.get("/settings");
    assert_eq!(page.status, 200, "{}", page.text());
    post_fields(
        s,
        "/settings",
        &with(&form_of(&page.text(), "/settings"), changes),
    )
}

/// An executable shell script in the test's directory.
pub fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write_file(dir, name, format!("#!/bin/sh\n{body}\n").as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Whether the field whose label is for `field` is marked invalid.
pub fn error_near(html: &str, field: &str) -> bool {
    let Some(label) = html.find(&format!("<label for=\"{field}\"")) else {
        return false;
    };
    let div = html[..label].rfind("<div class=\"").expect("a field div");
    let class = &html[div + 12..label];
    class[..class.find('"').unwrap_or(0)]
        .split(' ')
        .any(|c| c == "invalid")
}
