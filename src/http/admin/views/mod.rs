//! The console's layout and shared widgets: one `page(title, nav, body)` layout, form
//! fields that show their own error, pagers, and time formatting. Views are functions that
//! return `Markup` from display-ready values; they never query anything.
//!
//! No inline scripts or styles (the CSP is `default-src 'self'`): the look lives in
//! `assets/admin.css`, and every page works without JavaScript (`assets/copy.js` only adds
//! copy buttons). The widgets of the account, policy and inventory pages are in `widgets`.

pub mod widgets;

use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

use crate::error::FieldError;

/// What the layout needs to know about the signed-in user and the current section.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// `(user name, role)` when signed in.
    pub user: Option<(String, String)>,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
    /// The active section (`find`, `associate`, `profiles`, …).
    pub section: &'static str,
    /// Whether to show sections only admins use.
    pub admin: bool,
    /// Whether to show accounts, the inventory and the audit log (roles that see every
    /// device).
    pub lens: bool,
    /// Seconds after which the page reloads itself (progress pages).
    pub refresh: Option<u32>,
    /// The account the pages act on, `(slug, name)`: every page says it.
    pub account: Option<(String, String)>,
    /// The accounts the user may switch to, `(slug, name)` (the switcher shows with two).
    pub accounts: Vec<(String, String)>,
}

const SECTIONS: &[(&str, &str, &str)] = &[
    ("find", "/find", "Find Operations"),
    ("associate", "/associations/new", "Profile Association"),
    ("import", "/import", "Bulk Association"),
    ("profiles", "/profiles", "Profiles"),
    ("unassociated", "/unassociated", "Unassociated"),
    ("firmware", "/firmware", "Firmware"),
    ("files", "/files", "Phone Files"),
    ("tokens", "/tokens", "API Tokens"),
];

/// Sections of roles that see every device (`Action::ReadAccounts`).
const LENS_SECTIONS: &[(&str, &str, &str)] = &[
    ("accounts", "/accounts", "Accounts"),
    ("inventory", "/inventory", "Inventory"),
    ("audit", "/audit", "Audit Log"),
];

/// The page layout shared by every console page.
pub fn page(title: &str, nav: &Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = nav.refresh {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (title) " · zerotouch" }
                link rel="stylesheet" href="/assets/admin.css";
                script src="/assets/copy.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "zerotouch" }
                    @if let Some((name, role)) = &nav.user {
                        nav.sections {
                            @for (key, href, label) in SECTIONS {
                                a href=(href) class=@if *key == nav.section { "active" } { (label) }
                            }
                            @if nav.lens {
                                @for (key, href, label) in LENS_SECTIONS {
                                    a href=(href) class=@if *key == nav.section { "active" } { (label) }
                                }
                            }
                            @if nav.admin {
                                a href="/settings" class=@if nav.section == "settings" { "active" } { "Settings" }
                                a href="/diagnostics" class=@if nav.section == "diagnostics" { "active" } { "Diagnostics" }
                                a href="/users" class=@if nav.section == "users" { "active" } { "Users" }
                            }
                        }
                        @if let Some((slug, account)) = &nav.account {
                            div.account {
                                span { "Account: " strong { (account) } }
                                @if nav.accounts.len() > 1 {
                                    " "
                                    form.inline method="post" action="/account" {
                                        input type="hidden" name="csrf" value=(nav.csrf);
                                        label.sr-only for="switch-account" { "Act on account" }
                                        select id="switch-account" name="account" {
                                            @for (s, n) in &nav.accounts {
                                                option value=(s) selected[s == slug] { (n) }
                                            }
                                        }
                                        " "
                                        button.link type="submit" { "Switch" }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { (name) " · " (role) }
                            " "
                            a href="/password" { "Password" }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(nav.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
                footer.muted { "zerotouch " (crate::VERSION) " · " a href="/health" { "health" } }
            }
        }
    }
}

/// The hidden CSRF field every POST form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A list of problems at the top of a form.
pub fn problems(list: &[FieldError]) -> Markup {
    html! {
        @if !list.is_empty() {
            div.errors role="alert" {
                p { strong { @if list.len() == 1 { "Please correct this:" } @else { "Please correct these " (list.len()) " things:" } } }
                ul { @for p in list { li { strong { (field_name(&p.field)) } ": " (message(&p.message)) } } }
            }
        }
    }
}

/// A field's key in words: `devices[0].sip_auth_password` → "SIP authentication
/// password"; a dotted parameter name stays as it is.
pub fn field_name(key: &str) -> String {
    let last = key.rsplit(['.']).next().unwrap_or(key);
    let last = last.split('[').next().unwrap_or(last);
    if key.contains('.') && !key.contains('[') && !key.starts_with("devices") {
        return key.to_string();
    }
    let label = crate::domain::audit::field_label(last);
    let mut c = label.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => key.to_string(),
    }
}

/// A message for people: `backticked` words become code, without the backticks.
pub fn message(text: &str) -> Markup {
    let parts: Vec<&str> = text.split('`').collect();
    // An odd count of backticks leaves the text as it is.
    if parts.len() % 2 == 0 {
        return html! { (text) };
    }
    html! {
        @for (i, part) in parts.iter().enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// A notice shown after an action succeeded.
pub fn notice(text: Option<&str>) -> Markup {
    html! { @if let Some(t) = text { div.notice role="status" { (t) } } }
}

/// A labelled text input showing the problem for its field, if any.
pub struct Field<'a> {
    pub label: &'a str,
    pub name: &'a str,
    pub value: &'a str,
    pub hint: &'a str,
    pub kind: &'a str,
    pub required: bool,
    pub errors: &'a [FieldError],
}

impl<'a> Field<'a> {
    pub fn text(
        label: &'a str,
        name: &'a str,
        value: &'a str,
        errors: &'a [FieldError],
    ) -> Field<'a> {
        Field {
            label,
            name,
            value,
            hint: "",
            kind: "text",
            required: false,
            errors,
        }
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = hint;
        self
    }

    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

impl Render for Field<'_> {
    fn render(&self) -> Markup {
        let error = self
            .errors
            .iter()
            .find(|e| e.field == self.name || self.name.ends_with(&format!(".{}", e.field)));
        html! {
            div.field.invalid[error.is_some()] {
                label for=(self.name) { (self.label) @if self.required { " *" } }
                input id=(self.name) name=(self.name) type=(self.kind) value=(self.value) required[self.required]
                    autocomplete=@if self.kind == "password" { "new-password" } @else { "off" };
                @if let Some(e) = error { span.error { (message(&e.message)) } }
                @if !self.hint.is_empty() { span.hint { (self.hint) } }
            }
        }
    }
}

/// A select box with the current value chosen.
pub fn select(label: &str, name: &str, options: &[(&str, &str)], current: &str) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[*value == current] { (text) }
                }
            }
        }
    }
}

/// Previous/next links and the position, for a list split into pages.
pub fn pager(base: &str, page: usize, per_page: usize, total: usize, more: bool) -> Markup {
    let pages = total.div_ceil(per_page.max(1)).max(1);
    let sep = if base.contains('?') { "&" } else { "?" };
    html! {
        nav.pager aria-label="pages" {
            @if page > 1 { a href=(format!("{base}{sep}page={}", page - 1)) rel="prev" { "‹ Previous" } }
            span { "Page " (page) " of " (pages) @if more { "+" } " · " (total) @if more { "+" } " result" @if total != 1 { "s" } }
            @if page < pages { a href=(format!("{base}{sep}page={}", page + 1)) rel="next" { "Next ›" } }
        }
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`, or `--` when never.
pub fn when(secs: Option<i64>) -> String {
    match secs {
        Some(s) if s > 0 => crate::domain::time::format_time(s),
        _ => "--".into(),
    }
}

/// Text that must not be escaped twice (already-escaped entities from our own code).
pub fn raw(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}

/// A simple error page body.
pub fn error_body(status: u16, message: &str, back: &str) -> Markup {
    html! {
        h1 { (status) " · " (crate::http::engine::conn::reason(status)) }
        p.errors { (message) }
        p { a href=(back) { "Home" } " · use your browser's Back button to return to the form" }
    }
}
