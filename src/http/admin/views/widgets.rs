//! Widgets of the account, policy and inventory pages: a value with a copy button, the
//! Auto-Sync switch, state and flag badges, and the page that asks to confirm an action
//! that would lock devices out. Like the rest of `views`, they take display-ready values
//! and query nothing.
//!
//! The copy buttons are a progressive enhancement (`assets/copy.js` adds them); without
//! JavaScript the value is selected with one click (`user-select: all`) and copied by hand.
//! The switch is a checkbox styled in CSS, so the form posts the same either way.

use maud::{Markup, html};

use super::csrf_field;

/// A value shown for copying: `code` that selects whole, and a button the script adds.
pub fn copyable(id: &str, value: &str) -> Markup {
    html! {
        span.copyable {
            code.copy id=(id) { (value) }
            button.copy.secondary type="button" data-copy=(id) hidden { "Copy" }
        }
    }
}

/// The Auto-Sync switch: a checkbox styled as a slider, with its label.
pub fn switch(name: &str, checked: bool, label: &str, disabled: bool) -> Markup {
    html! {
        label.switch {
            input type="checkbox" name=(name) value="on" checked[checked] disabled[disabled] role="switch";
            span.slider aria-hidden="true" {}
            span.label { (label) }
        }
    }
}

/// A small badge; `kind` becomes its class (`on`, `off`, `warn`, `bad`, a state name).
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class=(format!("badge {kind}")) { (text) } }
}

/// What an action that changes phones' service needs to ask again.
pub struct Confirm<'a> {
    /// What is being done, e.g. `Turn Auto-Sync off`.
    pub title: &'a str,
    /// How many phones it affects.
    pub devices: usize,
    /// The domain's message (names the first devices).
    pub message: &'a str,
    /// Each phone with what happens to it.
    pub phones: &'a [crate::error::Affected],
    /// Where the form posts, and the fields it posts again (never a secret: forms that
    /// carry one ask for it again instead of using this page).
    pub action: &'a str,
    pub fields: &'a [(&'a str, &'a str)],
    /// The button's words, e.g. `Turn off and lock out 5 devices`.
    pub button: &'a str,
    /// Where "Cancel" leads.
    pub back: &'a str,
}

/// The body of a confirmation page: the count, the message, and a second form post with
/// `confirm=yes`.
pub fn confirm_body(csrf: &str, c: &Confirm<'_>) -> Markup {
    html! {
        div.narrow.wide {
            h1 { (c.title) "?" }
            div.warning role="alert" {
                (affected(c.devices, c.phones))
                p { "A phone refused by this server keeps working on what it has, but no longer gets its configuration from here until it is re-admitted or reconfigured by hand." }
            }
            form method="post" action=(c.action) {
                (csrf_field(csrf))
                @for (k, v) in c.fields { input type="hidden" name=(k) value=(v); }
                input type="hidden" name="confirm" value="yes";
                div.actions {
                    button.danger type="submit" { (c.button) }
                    " "
                    a.button.secondary href=(c.back) { "Cancel" }
                }
            }
        }
    }
}

/// Shown at most in the table of affected phones (the count names them all).
const AFFECTED_SHOWN: usize = 50;

/// The count of phones an action affects and a table of each with what happens to it.
pub fn affected(count: usize, phones: &[crate::error::Affected]) -> Markup {
    html! {
        p.count { strong { (count) } " phone" @if count != 1 { "s" } " affected:" }
        table.affected {
            thead { tr { th { "MAC" } th { "What happens" } } }
            tbody {
                @for p in phones.iter().take(AFFECTED_SHOWN) {
                    tr { td { code { (p.mac) } } td { (p.reason) } }
                }
            }
        }
        @if phones.len() > AFFECTED_SHOWN {
            p.hint { "and " (phones.len() - AFFECTED_SHOWN) " more (the API and `zerotouch` list them all)" }
        }
    }
}

/// A value or its mask: secrets are never shown after saving.
pub fn shown(value: &str, secret: bool) -> String {
    if secret && !value.is_empty() {
        crate::domain::audit::MASK.to_string()
    } else {
        value.to_string()
    }
}

/// The note for Auto-Sync in an account with Poly OS devices (`macs`, none: no note): they
/// take the credentials only with Basic authentication, which no provisioning file sets.
/// `synced`: the account's Auto-Sync includes Poly OS devices.
pub fn poly_os_auth_note(macs: &[String], synced: bool) -> Markup {
    const SHOWN: usize = 5;
    html! {
        @if !macs.is_empty() {
            div.note.poly-os-auth role="note" {
                strong { "Poly OS devices must use Basic authentication. " }
                "This account has " (macs.len()) " Poly OS device" @if macs.len() != 1 { "s" } " ("
                @for (i, m) in macs.iter().take(SHOWN).enumerate() {
                    @if i > 0 { ", " }
                    a href=(format!("/devices/{m}")) { code { (m) } }
                }
                @if macs.len() > SHOWN { ", …" }
                "). Poly OS sends provisioning credentials with Basic or NTLM authentication ("
                code { "management.provisioning.authtype" } "), and that cannot be set by a provisioning file: "
                "set it to Basic on each device's web interface (Provisioning) or through its REST API, "
                "or Auto-Sync's credentials will not reach it."
                @if !synced { " Auto-Sync sends Poly OS devices nothing until its option “Sync Poly OS devices too” is on." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_posts_the_fields_again_with_confirm_yes() {
        let html = confirm_body(
            "tok",
            &Confirm {
                phones: &[crate::error::Affected {
                    mac: "0004f2000001".into(),
                    reason: "refused from now: Auto-Sync is off".into(),
                }],
                title: "Turn Auto-Sync off",
                devices: 5,
                message: "turning Auto-Sync off: 5 device(s) will be locked out",
                action: "/accounts/default/autosync",
                fields: &[("enabled", "off")],
                button: "Turn off",
                back: "/accounts/default",
            },
        )
        .into_string();
        assert!(
            html.contains("<strong>5</strong> phones affected"),
            "{html}"
        );
        assert!(
            html.contains("<code>0004f2000001</code></td><td>refused from now: Auto-Sync is off"),
            "each phone with its reason: {html}"
        );
        assert!(html.contains(r#"name="confirm" value="yes""#));
        assert!(html.contains(r#"name="enabled" value="off""#));
        assert!(html.contains(r#"name="csrf" value="tok""#));
    }

    #[test]
    fn secrets_are_masked_and_empty_values_stay_empty() {
        assert_eq!(shown("hunter2", true), "********");
        assert_eq!(shown("", true), "");
        assert_eq!(shown("German", false), "German");
    }
}
