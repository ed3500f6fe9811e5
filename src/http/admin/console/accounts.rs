//! Accounts pages (Lens "Manage Accounts" > "Device Provisioning"): the list of accounts
//! with a form for a new one, and per account its service address (with copy buttons and
//! as the DHCP option 160 value), provisioning on or off, the server credentials, the
//! Auto-Sync switch and options, and the former addresses still answered (aliases).
//!
//! This module also routes everything under `/accounts/<slug>/` to the modules that own it
//! (`provisioning` for the actions of this page, `autosync`, `policies`, `inventory`,
//! `transfer`), after one check that the user may read accounts at all. Handlers build an
//! `AccountView` of display-ready values; `account_page` only renders it.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, html_page, notice_of, provisioning};
use crate::actions::accounts::{self, AliasState, Impact, NewAccount};
use crate::domain::account::Account;
use crate::domain::autosync::Settings;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::widgets::{badge, copyable};
use crate::http::admin::views::{self, Field, csrf_field};

/// Routes `/accounts` and everything under it.
pub fn route(c: &Console, ctx: &Ctx, req: &Request, f: &Form, rest: &[&str]) -> Result<Response> {
    let m = req.method();
    let [slug, rest @ ..] = rest else {
        ctx.signed_in.require(Action::ReadAccounts)?;
        return match m {
            "POST" => create(c, ctx, f),
            _ => list(c, ctx, notice_of(req), &[], &NewAccount::default(), 200),
        };
    };
    // The account's pages act in it, with the user's role there; an account the user has
    // no role in is not found.
    let (user, account) = crate::actions::tenants::act_in(&*c.conn()?, &ctx.signed_in, Some(slug))?;
    let ctx = &Ctx {
        user,
        account: account.clone(),
        ..ctx.clone()
    };
    ctx.user.require(Action::ReadAccounts)?;
    let a = &account;
    use super::{autosync, inventory, policies, provisioning as p, transfer};
    match (m, rest) {
        ("GET", []) => show(c, ctx, a, req),
        ("POST", ["provisioning"]) => p::post_provisioning(c, ctx, a, f),
        ("POST", ["credentials"]) => p::post_credentials(c, ctx, a, f),
        ("POST", ["autosync"]) => p::post_autosync(c, ctx, a, f),
        ("POST", ["tftp-credential"]) => p::post_tftp_credential(c, ctx, a, f),
        ("POST", ["ftp-factory-login"]) => p::post_ftp_factory_login(c, ctx, a, f),
        ("POST", ["sip"]) => p::post_sip(c, ctx, a, f),
        ("POST", ["autosync", "options"]) => p::post_options(c, ctx, a, f),
        ("POST", ["address"]) => p::post_address(c, ctx, a, f),
        ("POST", ["aliases", "retire"]) => p::post_retire(c, ctx, a, f),
        ("GET", ["autosync"]) => autosync::page(c, ctx, a, req),
        ("POST", ["readmit"]) => autosync::post_readmit(c, ctx, a, f),
        ("GET", ["inventory"]) => inventory::page(c, ctx, a, req),
        ("GET", ["inventory.csv"]) => super::bulk::csv(c, a, req),
        ("POST", ["inventory", "bulk"]) => super::bulk::post(c, ctx, a, f),
        ("GET", ["jobs", id]) => super::jobs::page(c, ctx, a, id),
        ("GET", ["transfer"]) => transfer::page(ctx, a),
        (_, ["enrolment", rest @ ..]) => super::enrolment::route(c, ctx, a, req, f, rest),
        ("POST", ["export"]) => transfer::post_export(c, ctx, a, f),
        ("POST", ["import"]) => transfer::post_import(c, ctx, a, f),
        _ => policies::route(c, ctx, a, req, f, rest),
    }
}

/// The side tabs of an account's pages (Lens shows them beside "Device Provisioning").
pub fn tabs(account: &Account, active: &str) -> Markup {
    let base = format!("/accounts/{}", account.slug);
    let items = [
        ("provisioning", base.clone(), "Device Provisioning"),
        ("autosync", format!("{base}/autosync"), "Auto-Sync progress"),
        (
            "policies",
            format!("{base}/policies"),
            "Sites, groups & policies",
        ),
        ("inventory", format!("{base}/inventory"), "Inventory"),
        ("enrolment", format!("{base}/enrolment"), "Enrolment"),
        ("transfer", format!("{base}/transfer"), "Export / import"),
    ];
    html! {
        p.crumbs { a href="/accounts" { "Accounts" } " › " (account.name) " " code { (account.slug) } }
        nav.tabs aria-label="account" {
            @for (key, href, label) in &items {
                a href=(href) class=@if *key == active { "active" } aria-current=[(*key == active).then_some("page")] { (label) }
            }
        }
    }
}

fn list(
    c: &Console,
    ctx: &Ctx,
    notice: Option<&str>,
    problems: &[FieldError],
    input: &NewAccount,
    status: u16,
) -> Result<Response> {
    let list = crate::actions::tenants::list_accounts(&*c.conn()?, &ctx.signed_in)?;
    let can = ctx.signed_in.require(Action::ManageInstallation).is_ok();
    let body = html! {
        h1 { "Accounts" }
        (views::notice(notice))
        p.muted { "Each account answers phones at its own provisioning service address, with its own server credentials, policies and inventory." }
        table.list {
            thead { tr { th { "Account" } th { "Service address" } th { "Provisioning" } th { "Auto-Sync" } th.num { "Credentials" } th.num { "Devices" } } }
            tbody {
                @for a in &list {
                    tr {
                        td { a href=(format!("/accounts/{}", a.slug)) { (a.name) } " " code { (a.slug) } @if a.is_default { " " (badge("muted", "default, also at /")) } }
                        td { code { (a.service_address) } }
                        td { (on_off(a.settings.provisioning_enabled, "enabled", "disabled")) }
                        td { (on_off(a.settings.enabled, "on", "off")) }
                        td.num { "generation " (a.credential_generation) }
                        td.num { (a.devices) }
                    }
                }
            }
        }
        @if can {
            h2 { "Add an account" }
            p.hint { "New accounts start with Device Provisioning and Auto-Sync on, as in Poly Lens." }
            (views::problems(problems))
            form method="post" action="/accounts" {
                (csrf_field(&ctx.csrf))
                div.grid {
                    (Field::text("Name", "name", &input.name, problems).required())
                    (Field::text("Slug", "slug", &input.slug, problems).required().hint("2 to 32 lowercase letters, digits, -; part of the address"))
                    (Field::text("Server user", "user", &input.user, problems).required())
                    (Field::text("Password", "password", "", problems).kind("password").required())
                    (Field::text("Repeat the password", "repeat_password", "", problems).kind("password").required())
                }
                button type="submit" { "Add account" }
            }
        }
    };
    Ok(html_page(
        status,
        views::page("Accounts", &ctx.nav("accounts"), body),
    ))
}

fn create(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.signed_in.require(Action::ManageInstallation)?;
    let input = NewAccount {
        name: f.get("name").trim().to_string(),
        slug: f.get("slug").trim().to_string(),
        user: f.get("user").trim().to_string(),
        password: f.get("password").to_string(),
    };
    let mismatch = (f.get("password") != f.get("repeat_password"))
        .then(|| FieldError::new("repeat_password", "does not match the password"));
    let result = match mismatch {
        Some(p) => Err(Error::Invalid(vec![p])),
        None => {
            let actor = c.actor(&ctx.user, &ctx.account);
            accounts::add_account(&mut *c.conn()?, &actor.who, &input)
        }
    };
    match result {
        Ok(a) => Ok(super::done(
            &format!("/accounts/{}", a.slug),
            "account-created",
        )),
        Err(Error::Invalid(p)) => list(c, ctx, None, &p, &input, 422),
        Err(Error::Conflict(m)) => list(c, ctx, None, &[FieldError::new("slug", m)], &input, 409),
        Err(e) => Err(e),
    }
}

/// Everything the account page shows, ready to render.
pub struct AccountView {
    pub account: Account,
    pub settings: Settings,
    pub devices: i64,
    /// `http://<host><service path>` as phones reach it.
    pub service_url: String,
    /// The DHCP option 160 value with a placeholder for the password, and the warning
    /// when the last probe saw old credentials in DHCP.
    pub option160: accounts::Option160,
    pub aliases: Vec<AliasState>,
    pub synced: usize,
    pub pending: usize,
    pub locked_out: usize,
    /// What the account serves to the account credential, and its enrolment counts.
    pub secrets: String,
    pub device_secrets: bool,
    pub not_enrolled: usize,
    pub contested: usize,
    /// What the actions of this page would lock out now (managers only).
    pub impacts: Option<Impacts>,
    pub can_manage: bool,
    /// MACs of its Poly OS devices (declared or seen), for the authentication note.
    pub poly_os: Vec<String>,
}

/// How many devices each action would lock out if taken now.
pub struct Impacts {
    pub disable: Impact,
    pub autosync_off: Impact,
    pub rotate: Impact,
    pub new_address: Impact,
}

/// What the credentials form shows again after a problem (never the password).
#[derive(Default)]
pub struct CredentialsForm<'a> {
    pub user: &'a str,
    pub grace_days: &'a str,
    pub compromised: bool,
    pub problems: &'a [FieldError],
    /// The lock-out to confirm: `(devices, message)`.
    pub confirm: Option<(usize, &'a [crate::error::Affected])>,
}

pub fn view(c: &Console, ctx: &Ctx, account: &Account) -> Result<AccountView> {
    let conn = c.conn()?;
    let summary = accounts::summarize(&conn, account)?;
    let progress = accounts::progress(&conn, account)?;
    let can_manage = ctx.user.require(Action::ManageAccounts).is_ok();
    let impacts = if can_manage {
        Some(Impacts {
            disable: accounts::impact_provisioning(&conn, account, false)?,
            autosync_off: accounts::impact_autosync(&conn, account, false)?,
            rotate: accounts::impact_set_credentials(&conn, account, Default::default())?,
            new_address: accounts::impact_regenerate_address(&conn, account)?,
        })
    } else {
        None
    };
    let host = super::devices::reach(c).host;
    let path = account.service_path();
    Ok(AccountView {
        service_url: format!("http://{host}{path}"),
        option160: accounts::option160(&conn, &c.config(), account)?,
        aliases: accounts::list_aliases(&conn, account)?,
        settings: summary.settings,
        devices: summary.devices,
        synced: progress.synced,
        pending: progress.pending.len(),
        locked_out: progress.locked_out.len(),
        secrets: summary.secrets_text(),
        device_secrets: summary.device_secrets,
        not_enrolled: summary.not_enrolled,
        contested: summary.contested,
        impacts,
        can_manage,
        poly_os: accounts::poly_os_devices(&conn, account)?,
        account: account.clone(),
    })
}

fn show(c: &Console, ctx: &Ctx, account: &Account, req: &Request) -> Result<Response> {
    let v = view(c, ctx, account)?;
    let form = CredentialsForm {
        user: account.device_user.as_deref().unwrap_or(""),
        ..Default::default()
    };
    Ok(html_page(200, account_page(ctx, &v, &form, notice_of(req))))
}

fn on_off(on: bool, yes: &str, no: &str) -> Markup {
    badge(if on { "on" } else { "off" }, if on { yes } else { no })
}

/// The account page: Lens's "Device Provisioning" tab.
pub fn account_page(
    ctx: &Ctx,
    v: &AccountView,
    form: &CredentialsForm<'_>,
    notice: Option<&str>,
) -> Markup {
    let a = &v.account;
    let s = &v.settings;
    let base = format!("/accounts/{}", a.slug);
    let body = html! {
        (tabs(a, "provisioning"))
        h1 { "Device Provisioning · " (a.name) }
        (views::notice(notice))
        div.cards {
            div.card { strong { (badge(if s.provisioning_enabled { "on" } else { "bad" }, if s.provisioning_enabled { "Enabled" } else { "Disabled" })) } span { "Device Provisioning" } }
            div.card { strong { (on_off(s.enabled, "On", "Off")) } span { "Auto-Sync credentials" } }
            a.card href=(format!("{base}/inventory")) { strong { (v.devices) } span { "associated devices" } }
            a.card href=(format!("{base}/autosync")) { strong { (v.synced) " · " (v.pending) " · " (v.locked_out) } span { "synced · pending · locked out" } }
            a.card.warn[v.not_enrolled > 0 || v.contested > 0] href=(format!("{base}/enrolment")) { strong { (v.not_enrolled) " · " (v.contested) } span { "not yet enrolled · contested" } }
        }
        p class=(if v.device_secrets { "hint" } else { "error" }) { "Secrets: " (v.secrets) ". " a href=(format!("{base}/enrolment")) { "Enrolment" } }
        section.panel {
            h2 { "Provisioning service address" }
            p.hint { "Phones reach this account at its unique address. Enter it as the provisioning server in DHCP or on a phone." }
            table.kv {
                tr { th { "Service address" } td { (copyable("service-url", &v.service_url)) } }
                tr { th { "DHCP option 160" } td { (copyable("option-160", &v.option160.value)) span.hint { "Replace PASSWORD with the server password: it is not shown after saving. After every credential change, update the option too: new and factory-reset phones take their credentials from it. Do not use Auto-Sync if DHCP hands out the credentials." } } }
                @if a.is_default { tr { th { "Also answers at" } td { code { "/" } " (the default account)" } } }
            }
            @if let Some(w) = &v.option160.warning { div.warning role="alert" id="option-160-stale" { strong { "DHCP still carries old credentials. " } (w) " Put the value above in option 160 (or take the credentials out of DHCP)." } }
            (provisioning::address_block(ctx, v))
        }
        (provisioning::provisioning_block(ctx, v, form))
        (provisioning::autosync_block(ctx, v))
        (provisioning::tftp_block(ctx, v))
        (provisioning::ftp_block(ctx, v))
        (provisioning::sip_block(ctx, v))
        p.muted { "Every change on this page is recorded in the " a href=(format!("/audit?account={}", a.slug)) { "audit log" } " (secrets masked)." }
    };
    views::page(&format!("Account {}", a.name), &ctx.nav("accounts"), body)
}
