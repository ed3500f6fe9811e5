//! The console's layout and shared widgets: one `page(title, nav, body)` layout with the
//! sections grouped by task, form fields that show their own error, pagers, and times.
//! Views are functions that return `Markup` from display-ready values; they never query
//! anything (`when` reads the clock, to say how long ago a time was).
//!
//! No inline scripts or styles (the CSP is `default-src 'self'`): the look lives in
//! `assets/admin.css`, and every page works without JavaScript (`assets/copy.js` only adds
//! copy buttons, `assets/times.js` only shows exact times in the browser's time zone). The
//! widgets of the account, policy and inventory pages are in `widgets`.

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

/// Who sees a link of the navigation.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    /// Every signed-in user.
    All,
    /// Roles that see every device (`Nav::lens`).
    Lens,
    /// Roles that do not (their device list is Find Operations).
    NotLens,
    /// Installation-wide admins (`Nav::admin`).
    Admin,
}

/// A link of the navigation: `(section key, href, label, who sees it)`. The key is what a
/// handler passes to `Ctx::nav`, so the active page stays highlighted.
type Link = (&'static str, &'static str, &'static str, Who);

/// The console's sections grouped by task: `(group, links)`.
const GROUPS: &[(&str, &[Link])] = &[
    (
        "Devices",
        &[
            // One device list: who sees the inventory finds Find Operations (the ZTP
            // guide's search by field and its reference-ID view) as a view of it.
            ("inventory", "/inventory", "Inventory", Who::Lens),
            ("find", "/find", "Find Operations", Who::NotLens),
            ("unassociated", "/unassociated", "Unassociated", Who::All),
            (
                "associate",
                "/associations/new",
                "Profile Association",
                Who::All,
            ),
            ("import", "/import", "Bulk Association", Who::All),
        ],
    ),
    (
        "Configuration",
        &[
            ("profiles", "/profiles", "Profiles", Who::All),
            ("settings", "/settings", "Settings", Who::Admin),
            ("files", "/files", "Phone Files", Who::All),
            ("firmware", "/firmware", "Firmware", Who::All),
        ],
    ),
    (
        "Accounts & Auto-Sync",
        &[("accounts", "/accounts", "Accounts", Who::Lens)],
    ),
    (
        "Operations",
        &[
            ("diagnostics", "/diagnostics", "Diagnostics", Who::Admin),
            ("audit", "/audit", "Audit Log", Who::Lens),
        ],
    ),
    (
        "Admin",
        &[
            ("users", "/users", "Users", Who::Admin),
            ("tokens", "/tokens", "API Tokens", Who::All),
        ],
    ),
];

impl Nav {
    fn shows(&self, who: Who) -> bool {
        match who {
            Who::All => true,
            Who::Lens => self.lens,
            Who::NotLens => !self.lens,
            Who::Admin => self.admin,
        }
    }
}

/// The grouped section links. On a narrow screen they fold away, and the header's "Menu"
/// link opens them without a script: it targets the header (`#menu`), which `admin.css`
/// shows open while it is the target; "Close menu" or any link closes it.
fn sections(nav: &Nav) -> Markup {
    html! {
        nav.sections aria-label="Sections" {
            a.close-menu href="#" { "Close menu" }
            @for (group, links) in GROUPS {
                @let shown: Vec<_> = links.iter().filter(|l| nav.shows(l.3)).collect();
                @let active = shown.iter().any(|l| l.0 == nav.section);
                @if !shown.is_empty() {
                    div.group.active[active] {
                        span.group-name { (group) }
                        ul {
                            @for (key, href, label, _) in shown {
                                li {
                                    @if *key == nav.section {
                                        a.active href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The label of the active section, if the page belongs to one.
fn active_label(nav: &Nav) -> Option<&'static str> {
    GROUPS
        .iter()
        .flat_map(|(_, links)| links.iter())
        .find(|l| l.0 == nav.section && nav.shows(l.3))
        .map(|l| l.2)
}

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
                script src="/assets/times.js" defer {}
            }
            body {
                header.top #menu {
                    div.bar {
                        a.brand href="/" { "zerotouch" }
                        @if nav.user.is_some() {
                            a.menu href="#menu" {
                                "Menu"
                                @if let Some(label) = active_label(nav) { span.current { " · " (label) } }
                            }
                        }
                        @if let Some((name, role)) = &nav.user {
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
                    @if nav.user.is_some() { (sections(nav)) }
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
                ul { @for p in list { li {
                    @let name = field_name(&p.field);
                    // A parameter or file name stays as typed, in code; a form field in words.
                    @if name == p.field && p.field.contains('.') { code { (name) } } @else { strong { (name) } }
                    ": " (message(&p.message))
                } } }
            }
        }
    }
}

/// A field's key in words: `sip_auth_password` → "SIP authentication password",
/// `devices[2].mac` → "Device 3, MAC"; a dotted parameter or file name (`prov.polling.period`,
/// `Ring.wav`) stays as it is.
pub fn field_name(key: &str) -> String {
    if key.contains('.') && !key.contains('[') {
        return key.to_string();
    }
    let words = |k: &str| crate::domain::audit::field_label(k);
    let parts: Vec<String> = key
        .split('.')
        .map(|seg| match seg.split_once('[') {
            Some((name, rest)) => {
                let n = rest.trim_end_matches(']').parse::<usize>().map(|n| n + 1);
                let one = words(name.strip_suffix('s').unwrap_or(name));
                match n {
                    Ok(n) => format!("{one} {n}"),
                    Err(_) => words(seg),
                }
            }
            None => words(seg),
        })
        .collect();
    let text = parts.join(", ");
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => key.to_string(),
    }
}

/// A message for people: `backticked` words become code, without the backticks.
pub fn message(text: &str) -> Markup {
    let parts: Vec<&str> = text.split('`').collect();
    // An odd count of backticks leaves the text as it is.
    if parts.len().is_multiple_of(2) {
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

/// A time for a page: how long ago it was (`3 min ago`, `in 4 min`) in a `<time>` whose
/// `datetime` is RFC 3339 and whose title is the exact stamp in UTC (`assets/times.js`
/// turns the title to the browser's time zone); `--` when never. As text (`format!`) it is
/// the exact stamp: files, the CLI and JSON keep exact times.
pub fn when(secs: Option<i64>) -> When {
    When(secs.filter(|s| *s > 0))
}

/// A time as `when` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When(Option<i64>);

impl Render for When {
    fn render(&self) -> Markup {
        use crate::domain::time::{format_time, relative, rfc3339};
        match self.0 {
            Some(s) => {
                // The server's clock (`db::now_secs`: tests may move it), as stored times are.
                let now = crate::db::now_secs();
                html! { time datetime=(rfc3339(s)) title=(format_time(s)) { (relative(s, now)) } }
            }
            None => html! { "--" },
        }
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => f.write_str(&crate::domain::time::format_time(s)),
            None => f.write_str("--"),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_in_words_with_their_row_and_messages_lose_their_backticks() {
        assert_eq!(
            field_name("sip_auth_password"),
            "SIP authentication password"
        );
        assert_eq!(field_name("devices[2].mac"), "Device 3, MAC");
        assert_eq!(field_name("macs[0]"), "MAC 1");
        assert_eq!(field_name("prov.polling.period"), "prov.polling.period");
        assert_eq!(field_name("Ring.wav"), "Ring.wav");
        assert_eq!(field_name("row 2, speed_dial"), "Row 2, speed dial");
        let m = message("`nope` is not a MAC").into_string();
        assert_eq!(m, "<code>nope</code> is not a MAC");
        assert_eq!(message("one ` tick").into_string(), "one ` tick");
        let list = problems(&[
            FieldError::new("mac", "`x` is bad"),
            FieldError::new("prov.polling.period", "too small"),
        ])
        .into_string();
        assert!(list.contains("these 2 things"), "{list}");
        assert!(
            list.contains("<strong>MAC</strong>: <code>x</code> is bad"),
            "{list}"
        );
        assert!(
            list.contains("<code>prov.polling.period</code>: too small"),
            "{list}"
        );
    }

    #[test]
    fn a_time_is_relative_with_its_exact_stamp_and_never_is_dashes() {
        let html = when(Some(1_445_412_480)).render().into_string();
        assert!(
            html.starts_with(
                r#"<time datetime="2015-10-21T07:28:00Z" title="Wed, 21 Oct 2015 07:28:00 UTC">"#
            ) && html.ends_with(" years ago</time>"),
            "{html}"
        );
        assert_eq!(when(None).render().into_string(), "--");
        assert_eq!(when(Some(0)).render().into_string(), "--");
        assert_eq!(
            when(Some(1_445_412_480)).to_string(),
            "Wed, 21 Oct 2015 07:28:00 UTC"
        );
    }

    #[test]
    fn the_nav_groups_sections_and_marks_the_active_one_and_its_group() {
        let nav = Nav {
            user: Some(("ann".into(), "viewer".into())),
            section: "inventory",
            lens: true,
            ..Nav::default()
        };
        let html = sections(&nav).into_string();
        assert!(
            html.contains(r#"<div class="group active"><span class="group-name">Devices</span>"#)
                && html.contains(
                    r#"<a class="active" href="/inventory" aria-current="page">Inventory</a>"#
                ),
            "{html}"
        );
        assert!(
            !html.contains("/users") && !html.contains("/settings"),
            "admin links hidden: {html}"
        );
        assert_eq!(active_label(&nav), Some("Inventory"));
    }
}
