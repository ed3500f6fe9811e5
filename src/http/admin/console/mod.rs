//! The ZTP console on the admin listener: sign-in, sessions, CSRF, and the routing of the
//! pages in the sibling modules (profiles, associations and bulk import, Find, devices,
//! users and API tokens; the Lens pages: accounts with Device Provisioning and Auto-Sync,
//! sites, groups and policies, effective settings, inventory, export/import, audit log;
//! provisioning settings, template variables, device template values and the preview).
//!
//! Every page but the sign-in page needs a session: a random cookie (`HttpOnly;
//! SameSite=Strict; Path=/`, `Secure` over TLS) whose hash names a row of `sessions`. Every
//! POST carries the session's CSRF token in a hidden field and is refused with 403 and a
//! page saying why when it does not match. A user with a one-time password is sent to the
//! password page until they choose their own. Handlers build display-ready values and call
//! `actions`; nothing here decides a rule of provisioning.

mod accounts;
pub mod applynow;
mod assoc;
pub mod audit;
mod autosync;
mod bulk;
pub mod devices;
mod devicevals;
pub mod diagnostics;
pub mod effective;
mod enrolment;
mod files;
pub mod find;
mod firmware;
mod form;
mod import;
mod installation;
pub mod inventory;
pub mod jobs;
mod overrides;
mod policies;
mod preview;
mod profiles;
mod provisioning;
mod settings;
mod totp;
mod transfer;
mod typed;
mod users;
mod variables;

use std::sync::Arc;

use maud::{Markup, html};
use rouille::{Request, Response};

pub use form::Form;

use super::views::{self, Nav};
use crate::actions::Actor;
use crate::actions::signin;
use crate::config::Config;
use crate::db::{Pool, PooledConn};
use crate::domain::account::Account;
use crate::domain::provserver::OwnAddresses;
use crate::domain::throttle::{LoginThrottle, ThrottleLimits};
use crate::domain::users::User;
use crate::error::{Error, Result};
use crate::http::engine::conn::Peer;

/// Name of the session cookie.
pub const COOKIE: &str = "zt_session";

/// The console: shared state of its handlers.
pub struct Console {
    pub pool: Pool,
    /// The configuration in force; SIGHUP replaces it (`set_config`), so what handlers
    /// read per request from it (upload sizes, CSV row caps) follows the file.
    config: std::sync::RwLock<Arc<Config>>,
    pub own: OwnAddresses,
    pub throttle: LoginThrottle,
    /// The CA delivered to phones, if delivery is on: device pages show what phones get.
    pub trust: Option<crate::domain::provstate::PhoneTrust>,
    pub diagnostics: diagnostics::Diagnostics,
    /// External mode's "generate and push now" (one run at a time).
    pub push: crate::external::manual::ManualPush,
    /// The directory and the roles that must use a second factor.
    pub policy: signin::SignInPolicy,
    /// The progress of the device jobs running (`actions::device_jobs`).
    pub jobs: crate::actions::device_jobs::Registry,
}

/// A signed-in request.
#[derive(Clone)]
pub struct Ctx {
    /// The user as they act in `account` (their role there).
    pub user: User,
    pub csrf: String,
    pub token: String,
    /// The account the pages act on (the switcher's, `actions::tenants::console_account`).
    pub account: Account,
    /// The user as stored: what `actions::tenants::act_in` resolves for another account.
    pub signed_in: User,
    /// The accounts the user may switch to, `(slug, name)`.
    pub accounts: Vec<(String, String)>,
}

impl Ctx {
    pub fn nav(&self, section: &'static str) -> Nav {
        let lens = self
            .user
            .require(crate::domain::users::Action::ReadAccounts)
            .is_ok();
        Nav {
            user: Some((self.user.username.clone(), self.user.role.to_string())),
            csrf: self.csrf.clone(),
            // Find Operations and the device pages belong to the device list of who sees it.
            section: if lens && section == "find" {
                "inventory"
            } else {
                section
            },
            // Settings, diagnostics and users belong to the installation.
            admin: self.user.role == crate::domain::users::Role::Admin
                && self.user.installation_wide(),
            lens,
            refresh: None,
            account: Some((self.account.slug.clone(), self.account.name.clone())),
            accounts: self.accounts.clone(),
        }
    }
}

impl Console {
    pub fn new(pool: Pool, config: Arc<Config>) -> Console {
        let c = &config.console;
        let throttle = LoginThrottle::new(ThrottleLimits {
            per_user: c.login_failures_per_user,
            per_ip: c.login_failures_per_ip,
            window: std::time::Duration::from_secs(c.login_window_secs),
            block: std::time::Duration::from_secs(c.login_block_secs),
        });
        let own = crate::actions::own_addresses(&config);
        let diagnostics = diagnostics::Diagnostics::new(&config);
        let policy = signin::SignInPolicy::from_config(&config);
        Console {
            policy,
            pool,
            config: std::sync::RwLock::new(config),
            own,
            throttle,
            trust: None,
            diagnostics,
            push: Default::default(),
            jobs: Default::default(),
        }
    }

    /// Shows device files with the CA delivery phones get.
    pub fn with_trust(mut self, trust: Option<crate::domain::provstate::PhoneTrust>) -> Console {
        self.trust = trust;
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts a re-read configuration in force for the requests that follow (SIGHUP).
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn conn(&self) -> Result<PooledConn> {
        self.pool.get()
    }

    /// Where a background job opens its own connection (`actions::sip::after_change`).
    pub fn db_at(&self) -> crate::actions::sip::DbAt {
        crate::actions::sip::DbAt {
            path: self.pool.path().to_path_buf(),
            busy_timeout: self.pool.busy_timeout(),
        }
    }

    /// After a committed change that affects `macs` of `account`: apply it now when the
    /// account says so (`actions::sip::after_change`), in the background.
    pub fn after_change(
        &self,
        conn: &rusqlite::Connection,
        actor: &crate::actions::Actor<'_>,
        account: &Account,
        macs: Vec<String>,
    ) -> crate::actions::sip::AfterChange {
        let actor = crate::actions::Actor {
            account,
            who: actor.who.clone(),
            ..*actor
        };
        crate::actions::sip::after_change(conn, &actor, &self.config().sip, &self.db_at(), macs).0
    }

    /// The acting user in domain terms.
    pub fn actor<'a>(&'a self, user: &'a User, account: &'a Account) -> Actor<'a> {
        Actor {
            user,
            account,
            own: &self.own,
            partial_expiry_secs: (self.config().console.partial_expiry_hours * 3600) as i64,
            who: crate::domain::audit::Actor::person(&user.username),
        }
    }

    pub(crate) fn session_secs(&self) -> (i64, i64) {
        let c = &self.config().console;
        (
            (c.session_idle_minutes * 60) as i64,
            (c.session_max_hours * 3600) as i64,
        )
    }

    /// Handles a console request (anything on the admin listener that is not an asset,
    /// `/healthz` or the API).
    pub fn handle(&self, req: &Request, peer: &Peer) -> Response {
        let path = req.url();
        if path == "/login" {
            return match req.method() {
                "POST" => self.post_login(req, peer),
                _ => html_page(200, self.login_page("", None)),
            };
        }
        if matches!(
            path.as_str(),
            "/login/code" | "/login/enrol" | "/login/cancel"
        ) {
            return totp::staged(self, req, peer);
        }
        let ctx = match self.session(req) {
            Ok(Some(ctx)) => ctx,
            Ok(None) => {
                if req.method() == "POST" {
                    return html_page(
                        403,
                        views::page(
                            "Signed out",
                            &Nav::default(),
                            html! {
                                h1 { "Your session has ended" }
                                p { "Nothing was changed. " a href="/login" { "Sign in" } " and try again." }
                            },
                        ),
                    );
                }
                return Response::redirect_303("/login");
            }
            Err(e) => return self.error(None, &e),
        };
        let form = if req.method() == "POST" {
            match Form::read(req) {
                Ok(f) => Some(f),
                Err(e) => return self.error(Some(&ctx), &e),
            }
        } else {
            None
        };
        if let Some(f) = &form
            && !constant_time_eq(f.get("csrf").as_bytes(), ctx.csrf.as_bytes())
        {
            return html_page(
                403,
                views::page(
                    "Request refused",
                    &ctx.nav(""),
                    html! {
                        h1 { "Request refused: the form's security token is missing or out of date" }
                        p { "This protects you from other web sites sending forms in your name (CSRF). Nothing was changed." }
                        p { "If you opened the form before signing in again, go back, reload the page and submit it again." }
                        p { a href="/" { "Home" } }
                    },
                ),
            );
        }
        if ctx.user.must_change_password && path != "/password" && path != "/logout" {
            return Response::redirect_303("/password");
        }
        let result = self.route(req, &ctx, form.as_ref());
        match result {
            Ok(r) => r,
            Err(e) => self.error(Some(&ctx), &e),
        }
    }

    fn route(&self, req: &Request, ctx: &Ctx, form: Option<&Form>) -> Result<Response> {
        let empty = Form::default();
        let f = form.unwrap_or(&empty);
        let segs = path_segments(req, "");
        let path = req.url();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method(), segs.as_slice()) {
            ("POST", ["logout"]) => Ok(self.logout(ctx)),
            ("POST", ["account"]) => {
                let conn = self.conn()?;
                crate::actions::tenants::switch_account(&conn, &ctx.signed_in, f.get("account"))?;
                Ok(Response::redirect_303("/"))
            }
            ("GET", ["password"]) => Ok(html_page(200, users::password_page(ctx, &[], None))),
            ("POST", ["password"]) => users::post_password(self, ctx, f),
            ("GET", ["totp"]) => totp::page(self, ctx, None),
            ("POST", ["totp"]) => totp::page(self, ctx, Some(f)),
            ("POST", ["users", name, "totp-remove"]) => users::remove_totp(self, ctx, name),
            ("GET", [""]) => self.home(ctx, req),
            ("GET", ["users"]) => users::list(self, ctx, req),
            ("POST", ["users"]) => users::create(self, ctx, f),
            ("POST", ["users", name, "reset"]) => users::reset(self, ctx, name, f),
            ("GET", ["users", name, "reset"]) => users::confirm_reset(self, ctx, name),
            ("GET", ["users", name, "delete"]) => users::confirm_delete(self, ctx, name),
            ("GET", ["tokens", id, "delete"]) => users::confirm_revoke(self, ctx, id),
            ("POST", ["users", name, "accounts"]) => users::set_accounts(self, ctx, name, f),
            ("POST", ["users", name, "delete"]) => users::delete(self, ctx, name, f),
            ("GET", ["tokens"]) => users::tokens(self, ctx, None),
            ("POST", ["tokens"]) => users::create_token(self, ctx, f),
            ("POST", ["tokens", id, "delete"]) => users::revoke_token(self, ctx, id, f),
            ("GET", ["profiles"]) => profiles::list(self, ctx, req),
            ("GET", ["profiles", "new"]) => profiles::new(self, ctx),
            ("POST", ["profiles"]) => profiles::create(self, ctx, f),
            ("GET", ["profiles", name]) => profiles::edit(self, ctx, name, req),
            ("POST", ["profiles", name]) => profiles::update(self, ctx, name, f),
            ("GET", ["profiles", name, "files", file]) => {
                profiles::file(self, ctx, name, file, req)
            }
            ("GET", ["profiles", name, "delete"]) => profiles::confirm_delete(self, ctx, name),
            ("POST", ["profiles", name, "delete"]) => profiles::delete(self, ctx, name),
            ("GET", ["associations", "new"]) => assoc::new_subscriber(self, ctx),
            ("POST", ["associations"]) => assoc::create_subscriber(self, ctx, f),
            ("GET", ["subscribers", r]) => assoc::subscriber(self, ctx, r, req),
            ("POST", ["subscribers", r]) => assoc::update_subscriber(self, ctx, r, f),
            ("POST", ["subscribers", r, "delete"]) => assoc::delete_subscriber(self, ctx, r),
            ("GET", ["subscribers", r, "devices", "new"]) => {
                assoc::new_devices(self, ctx, Some(r), req)
            }
            ("POST", ["subscribers", r, "devices"]) => assoc::create_devices(self, ctx, Some(r), f),
            ("GET", ["devices", "new"]) => assoc::new_devices(self, ctx, None, req),
            ("POST", ["devices"]) => assoc::create_devices(self, ctx, None, f),
            ("GET", ["import"]) => import::import_form(self, ctx, req),
            ("POST", ["import"]) => import::post_import(self, ctx, f),
            ("GET", ["import", id]) => import::job(self, ctx, id),
            ("GET", ["import", id, "rejected.csv"]) => import::job_errors(self, ctx, id),
            ("GET", ["find"]) => find::find(self, ctx, req),
            ("GET", ["unassociated"]) => devices::unassociated(self, ctx, req),
            ("POST", ["unassociated"]) => devices::associate_seen(self, ctx, f),
            ("GET", ["devices", mac]) => devices::show(self, ctx, mac, req),
            ("GET", ["devices", mac, "edit"]) => devices::edit(self, ctx, mac),
            ("POST", ["devices", mac, "edit"]) => devices::update(self, ctx, mac, f),
            ("GET", ["devices", mac, "copy"]) => devices::copy_form(self, ctx, mac),
            ("POST", ["devices", mac, "copy"]) => devices::copy(self, ctx, mac, f),
            ("GET", ["devices", mac, "replace"]) => devices::replace_form(self, ctx, mac),
            ("POST", ["devices", mac, "replace"]) => devices::replace(self, ctx, mac, f),
            ("GET", ["devices", mac, "apply-now"]) => applynow::form(self, ctx, mac),
            ("POST", ["devices", mac, "apply-now"]) => applynow::apply(self, ctx, mac, f),
            ("GET", ["devices", mac, "uploads", file]) => {
                devices::upload(self, ctx, mac, file, req)
            }
            ("GET", ["devices", mac, "delete"]) => devices::confirm_delete(self, ctx, mac),
            ("POST", ["devices", mac, "delete"]) => devices::delete(self, ctx, mac, f),
            ("POST", ["devices", mac, "overrides", "clear"]) => {
                overrides::clear_device(self, ctx, mac)
            }
            ("GET", ["overrides"]) => overrides::list(self, ctx, req),
            ("POST", ["overrides", "clear"]) => overrides::clear_many(self, ctx, f),
            ("GET", ["files"]) => files::page(self, ctx, req),
            ("POST", ["files"]) => files::upload(self, ctx, f),
            ("POST", ["files", "languages"]) => files::upload_languages(self, ctx, f),
            ("POST", ["files", "delete"]) => files::delete(self, ctx, f),
            ("GET", ["files", "directory"]) => files::directory_page(self, ctx, req),
            ("POST", ["files", "directory"]) => files::save_directory(self, ctx, f),
            ("GET", ["files", "directory.csv"]) => files::directory_csv(self, ctx, req),
            ("POST", ["files", "directory", "import"]) => files::import_directory(self, ctx, f),
            ("GET", ["firmware"]) => firmware::page(self, ctx, req),
            ("POST", ["firmware"]) => firmware::upload(self, ctx, f),
            ("GET", ["firmware", "rollout"]) => firmware::rollout_page(self, ctx),
            ("GET", ["firmware", v]) => firmware::show(self, ctx, v, req),
            ("GET", ["firmware", v, "delete"]) => firmware::confirm_delete(self, ctx, v),
            ("POST", ["firmware", v, "delete"]) => firmware::delete(self, ctx, v),
            ("GET", ["devices", mac, "values"]) => devicevals::page(self, ctx, mac, req),
            ("POST", ["devices", mac, "values"]) => devicevals::save_vars(self, ctx, mac, f),
            ("POST", ["devices", mac, "lines"]) => devicevals::save_line(self, ctx, mac, None, f),
            ("POST", ["devices", mac, "lines", n]) => {
                devicevals::save_line(self, ctx, mac, Some(n), f)
            }
            ("POST", ["devices", mac, "lines", n, "delete"]) => {
                devicevals::delete_line(self, ctx, mac, n)
            }
            ("GET", ["settings"]) => settings::page(self, ctx, req),
            ("POST", ["settings"]) => settings::save(self, ctx, f),
            ("POST", ["settings", "push"]) => settings::push(self, ctx),
            ("GET", ["variables"]) => variables::page(self, ctx, req),
            ("POST", ["variables"]) => variables::save(self, ctx, f),
            ("POST", ["variables", name, "delete"]) => variables::delete(self, ctx, name),
            ("GET", ["preview"]) => preview::page(self, ctx, req),
            ("POST", ["preview"]) => preview::reveal(self, ctx, f),
            ("GET", ["diagnostics"]) => diagnostics::page(self, ctx),
            ("POST", ["diagnostics", "dhcp"]) => diagnostics::run_dhcp(self, ctx, f),
            ("POST", ["diagnostics", "dns"]) => diagnostics::run_dns(self, ctx, f),
            ("POST", ["diagnostics", "dhcp-config"]) => diagnostics::run_dhcp_config(self, ctx, f),
            ("POST", ["diagnostics", "phones"]) => diagnostics::run_phones(self, ctx),
            // Lens pages: accounts and everything under them, inventory, audit, settings.
            (_, ["accounts", rest @ ..]) => accounts::route(self, ctx, req, f, rest),
            ("GET", ["transfer"]) => installation::page(ctx),
            ("POST", ["transfer", "export"]) => installation::post_export(self, ctx, f),
            ("POST", ["transfer", "import"]) => installation::post_import(self, ctx, f),
            ("GET", ["inventory"]) => inventory::default_inventory(ctx, req),
            ("GET", ["audit"]) => audit::page(self, ctx, req),
            ("GET", ["audit.csv"]) => audit::download(self, ctx, req, true),
            ("GET", ["audit.json"]) => audit::download(self, ctx, req, false),
            ("GET", ["devices", mac, "settings"]) => {
                let pick = typed::Pick::of_query(req);
                effective::page(self, ctx, mac, notice_of(req), &pick, &[], 200)
            }
            _ => Err(Error::not_found(format!("page {path}"))),
        }
    }

    /// Decides, from the request head alone, whether a large upload (a firmware release)
    /// may be streamed to disk: only for a signed-in session (cookie) or an API token of a
    /// user allowed to manage assets. Anyone else is answered before the body is read.
    pub fn upload_refusal(
        &self,
        head: &crate::http::engine::conn::Head,
        api: bool,
    ) -> Option<Response> {
        self.head_refusal(head, api, Some(crate::domain::users::Action::ManageAssets))
    }

    /// Decides, from the request head alone, whether a body larger than a small form may be
    /// held in memory: only for a signed-in session (cookie) or an API token, whatever the
    /// role (the handler checks that). Anyone else is answered before memory is reserved.
    pub fn body_refusal(
        &self,
        head: &crate::http::engine::conn::Head,
        api: bool,
    ) -> Option<Response> {
        self.head_refusal(head, api, None)
    }

    /// The refusal of a request whose head carries no live session or token (or one of a
    /// user not allowed `need`).
    fn head_refusal(
        &self,
        head: &crate::http::engine::conn::Head,
        api: bool,
        need: Option<crate::domain::users::Action>,
    ) -> Option<Response> {
        let refuse = |e: Error| {
            if api {
                super::api::error_response(&e)
            } else {
                self.error(None, &e)
            }
        };
        let conn = match self.conn() {
            Ok(c) => c,
            Err(e) => return Some(refuse(e)),
        };
        let user = if api {
            let token = head
                .header("Authorization")
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
                .unwrap_or("");
            signin::token_user(&conn, token)
        } else {
            let token = head
                .header("Cookie")
                .unwrap_or("")
                .split(';')
                .filter_map(|c| c.trim().split_once('='))
                .find(|(k, _)| *k == COOKIE)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            let (idle, _) = self.session_secs();
            signin::session(&conn, &token, idle).map(|s| s.map(|(u, _)| u))
        };
        match user {
            Ok(Some(u)) => need.and_then(|a| u.require(a).err()).map(refuse),
            Ok(None) => Some(refuse(Error::Unauthorized)),
            Err(e) => Some(refuse(e)),
        }
    }

    fn session(&self, req: &Request) -> Result<Option<Ctx>> {
        let Some(token) = cookie(req, COOKIE) else {
            return Ok(None);
        };
        let conn = self.conn()?;
        let (idle, _) = self.session_secs();
        let Some((user, csrf)) = signin::session(&conn, &token, idle)? else {
            return Ok(None);
        };
        let (acting, account) = crate::actions::tenants::console_account(&conn, &user)?;
        let accounts = crate::db::accounts::list_accounts(&conn)?
            .into_iter()
            .filter(|a| user.may_act_in(a.id.0))
            .map(|a| (a.slug, a.name))
            .collect();
        Ok(Some(Ctx {
            user: acting,
            csrf,
            token,
            account,
            signed_in: user,
            accounts,
        }))
    }

    fn post_login(&self, req: &Request, peer: &Peer) -> Response {
        let form = match Form::read(req) {
            Ok(f) => f,
            Err(e) => return self.error(None, &e),
        };
        let username = form.get("username");
        let ip = peer.addr.ip().to_string();
        let outcome = signin::wait_turn(&self.throttle, &ip, username)
            .and_then(|()| self.conn())
            .and_then(|conn| {
                let (_, max) = self.session_secs();
                signin::sign_in(
                    &conn,
                    &self.throttle,
                    &self.policy,
                    &ip,
                    username,
                    form.get("password"),
                    max,
                )
            });
        match outcome {
            Ok(s) => {
                let secure = if req.is_secure() { "; Secure" } else { "" };
                let (_, max) = self.session_secs();
                let target = match s.stage {
                    signin::Stage::Totp => "/login/code",
                    signin::Stage::Enrol => "/login/enrol",
                    signin::Stage::SignedIn if s.user.must_change_password => "/password",
                    signin::Stage::SignedIn => "/",
                };
                Response::redirect_303(target).with_additional_header(
                    "Set-Cookie",
                    format!(
                        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max}{secure}",
                        s.token
                    ),
                )
            }
            Err(Error::Unauthorized) => html_page(
                401,
                self.login_page(username, Some("Wrong user name or password.")),
            ),
            Err(Error::Forbidden(why)) => html_page(403, self.login_page(username, Some(&why))),
            Err(Error::Unavailable(why)) => {
                html_page(503, self.login_page(username, Some(&why)))
            }
            Err(Error::TooManyAttempts(wait)) => html_page(
                429,
                self.login_page(
                    username,
                    Some(&format!(
                        "Too many wrong passwords. Wait {wait} seconds, then try again."
                    )),
                ),
            )
            .with_additional_header("Retry-After", wait.to_string()),
            Err(Error::Busy(wait)) => html_page(
                503,
                self.login_page(
                    username,
                    Some(&format!(
                        "The server is checking many sign-ins right now. Try again in {wait} seconds."
                    )),
                ),
            )
            .with_additional_header("Retry-After", wait.to_string()),
            Err(e) => self.error(None, &e),
        }
    }

    fn login_page(&self, username: &str, problem: Option<&str>) -> Markup {
        views::page(
            "Sign in",
            &Nav::default(),
            html! {
                div.narrow {
                    h1 { "Sign in to zerotouch" }
                    @if let Some(p) = problem { div.errors role="alert" { (p) } }
                    form method="post" action="/login" {
                        div.field { label for="username" { "User name" } input id="username" name="username" value=(username) autocomplete="username" required; }
                        div.field { label for="password" { "Password" } input id="password" name="password" type="password" autocomplete="current-password" required; }
                        button type="submit" { "Sign in" }
                    }
                    p.muted { "The first start printed the one-time password of the user " code { "admin" } " on the server's output." }
                }
            },
        )
    }

    fn logout(&self, ctx: &Ctx) -> Response {
        if let Ok(conn) = self.conn() {
            let _ = signin::sign_out(&conn, &ctx.token);
        }
        Response::redirect_303("/login").with_additional_header(
            "Set-Cookie",
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )
    }

    /// The dashboard of the account the pages act on (`actions::summary`): what needs the
    /// admin first, each number a link to its list, the first-run checklist until it is
    /// done, and the check-in charts; then a line per other account that needs attention.
    fn home(&self, ctx: &Ctx, req: &Request) -> Result<Response> {
        let conn = self.conn()?;
        let uploads = crate::datadir::DataDirs::under(&self.config().data_dir).uploads;
        let a = &ctx.account;
        let s = crate::actions::summary::summary(&conn, a, &uploads)?;
        // Other accounts the user acts in whose enrolment needs attention (the same
        // counts as their Enrolment pages).
        let mut others = Vec::new();
        for other in crate::db::accounts::list_accounts(&conn)?
            .into_iter()
            .filter(|o| o.id != a.id && ctx.signed_in.may_act_in(o.id.0))
        {
            let (waiting, contested) = crate::actions::enrolment::counts(&conn, &other)?;
            if !other.device_secrets || waiting > 0 || contested > 0 {
                others.push((other, waiting, contested));
            }
        }
        let link = |c: &crate::actions::summary::Card| -> String {
            use crate::actions::summary::CardFilter;
            match c.filter {
                CardFilter::State(st) => {
                    format!("/accounts/{}/inventory?state={}", a.slug, st.as_str())
                }
                CardFilter::Flag(f) => {
                    format!("/accounts/{}/inventory?flag={}", a.slug, f.as_str())
                }
                CardFilter::Page if c.key == "overridden" => "/overrides".to_string(),
                CardFilter::Page => format!("/accounts/{}/enrolment", a.slug),
            }
        };
        let urgent: Vec<_> = s
            .cards
            .iter()
            .filter(|c| c.needs_action && c.count > 0)
            .collect();
        let rest: Vec<_> = s
            .cards
            .iter()
            .filter(|c| !(c.needs_action && c.count > 0))
            .collect();
        let step_link = |key: &str| -> String {
            match key {
                "credentials" => format!("/accounts/{}", a.slug),
                "profile" => "/profiles/new".into(),
                "device" => "/associations/new".into(),
                "dhcp" => format!("/accounts/{}", a.slug),
                _ => "/diagnostics".into(),
            }
        };
        Ok(html_page(
            200,
            views::page(
                "Console",
                &ctx.nav(""),
                html! {
                    h1 { "What needs you now · " (a.name) }
                    (views::notice(notice_of(req)))
                    @if !a.device_secrets {
                        p.error #secrets-off { "This account serves SIP passwords to anyone holding its account credential. " a href=(format!("/accounts/{}/enrolment", a.slug)) { "Enrolment" } }
                    }
                    p.totals {
                        strong { (s.devices) } " devices: " (s.associated) " associated, " (s.unassociated) " seen but not associated · "
                        (s.online) " online, " (s.offline) " offline · " (s.profiles) @if s.profiles == 1 { " profile" } @else { " profiles" }
                    }
                    @if !s.checklist_complete {
                        section #checklist {
                            h2 { "Getting started" }
                            ol.checklist {
                                @for step in &s.checklist {
                                    li class=(if step.done { "done" } else { "todo" }) {
                                        @if step.done { span.badge.complete { "done" } " " (step.label) }
                                        @else { a href=(step_link(step.key)) { (step.label) } }
                                    }
                                }
                            }
                        }
                    }
                    @if urgent.is_empty() {
                        p.hint #all-clear { "No phone is locked out, contested or failing sign-in." }
                    } @else {
                        h2 { "Needs you" }
                        div.cards #urgent {
                            @for c in &urgent {
                                a.card.bad href=(link(c)) data-key=(c.key) {
                                    strong { (c.count) } span { (c.label) } small { (c.fix) }
                                }
                            }
                        }
                    }
                    h2 { "Devices" }
                    div.cards #states {
                        @for c in &rest {
                            a.card href=(link(c)) data-key=(c.key) {
                                strong { (c.count) } span { (c.label) }
                                @if c.count > 0 { small { (c.fix) } }
                            }
                        }
                    }
                    h2 { "Trends" }
                    div.charts {
                        figure { (maud::PreEscaped(s.checkins.hourly_svg())) }
                        figure { (maud::PreEscaped(s.checkins.refused_svg())) }
                        figure { (maud::PreEscaped(s.checkins.daily_svg())) }
                        @let fa = &s.firmware_adoption;
                        @if fa.eligible > 0 {
                            figure #firmware-adoption { (maud::PreEscaped(fa.svg())) figcaption { (fa.current) " of " (fa.eligible) " devices run their profile's firmware version. " a href=(format!("/accounts/{}/inventory?flag=firmware-behind", a.slug)) { "Devices behind" } " · " a href="/firmware" { "Firmware" } } }
                        }
                        @if let Some(b) = &s.burn_down {
                            figure #burn-down { (maud::PreEscaped(b.svg())) figcaption { (b.pending.last().copied().unwrap_or(0)) " of " (b.devices) " devices still to take generation " (b.generation) " (set " (views::when(Some(b.since))) "). " a href=(format!("/accounts/{}/autosync", a.slug)) { "Auto-Sync progress" } } }
                        }
                    }
                    @if !others.is_empty() {
                        h2 { "Other accounts" }
                        @for (o, waiting, contested) in &others {
                            p class=(if *contested > 0 || !o.device_secrets { "error" } else { "hint" }) {
                                "Account " strong { (o.name) } ": "
                                @if !o.device_secrets { "serves SIP passwords to anyone holding its account credential. " }
                                @if *contested > 0 { (contested) " contested device(s) need re-enrolment. " }
                                @if *waiting > 0 { (waiting) " device(s) not yet enrolled. " }
                                a href=(format!("/accounts/{}/enrolment", o.slug)) { "Enrolment" }
                            }
                        }
                    }
                    p { "Find a device in " a href="/find" { "Find" } ", make a " a href="/associations/new" { "Profile Association" }
                        ", or upload a " a href="/import" { "bulk association CSV" } "." }
                },
            ),
        ))
    }

    /// An error inside the layout, with the status of `http::status_for`.
    pub fn error(&self, ctx: Option<&Ctx>, e: &Error) -> Response {
        let status = crate::http::status_for(e);
        let nav = ctx.map(|c| c.nav("")).unwrap_or_default();
        let r = html_page(
            status,
            views::page(
                "Error",
                &nav,
                views::error_body(status, &crate::http::public_message(e), "/"),
            ),
        );
        match e {
            Error::TooManyAttempts(wait) | Error::Busy(wait) => {
                r.with_additional_header("Retry-After", wait.to_string())
            }
            _ => r,
        }
    }
}

/// An HTML response with a status.
pub fn html_page(status: u16, markup: Markup) -> Response {
    Response::html(markup.into_string()).with_status_code(status)
}

/// A redirect after a successful POST, with a notice key the target page shows.
pub fn done(location: &str, notice: &str) -> Response {
    let sep = if location.contains('?') { '&' } else { '?' };
    // Notice keys are plain words with dashes: nothing to encode.
    Response::redirect_303(format!("{location}{sep}done={notice}"))
}

/// The notice of a `done` redirect, limited to a fixed vocabulary so a link cannot put
/// arbitrary text on a page.
pub fn notice_of(req: &Request) -> Option<&'static str> {
    let key = req.get_param("done")?;
    NOTICES.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

const NOTICES: &[(&str, &str)] = &[
    ("user-accounts", "The user's accounts were changed."),
    (
        "totp-removed",
        "Two-factor sign-in removed; the user was signed out everywhere.",
    ),
    ("enrolment-mode", "Withholding changed."),
    ("enrolment-opened", "Enrolment window opened."),
    ("enrolment-closed", "Enrolment windows closed."),
    (
        "enrolment-reenrol",
        "Re-enrolment open: the next phone presenting the account credential for it gets a new credential of its own.",
    ),
    ("enrolment-dismissed", "Claims dismissed."),
    ("profile-created", "Profile created."),
    ("profile-saved", "Profile saved."),
    ("profile-deleted", "Profile deleted."),
    (
        "subscriber-created",
        "Reference ID created. It is a partial association until a device is added.",
    ),
    ("subscriber-saved", "Contact saved."),
    ("subscriber-deleted", "Reference ID deleted."),
    ("devices-added", "Devices associated."),
    ("device-saved", "Modification successful."),
    ("device-copied", "Association copied to the new device."),
    (
        "device-replaced",
        "Device replaced: the new MAC starts as staged.",
    ),
    ("device-deleted", "Device deleted."),
    ("user-created", "User created."),
    ("user-deleted", "User deleted."),
    ("token-revoked", "API token revoked."),
    ("password-changed", "Password changed."),
    ("firmware-imported", "Release imported."),
    ("firmware-deleted", "Release deleted."),
    ("directory-saved", "Directory saved."),
    (
        "asset-stored",
        "File stored; phones fetch it at their next poll or reboot.",
    ),
    ("asset-deleted", "File deleted."),
    (
        "overrides-cleared",
        "Overrides cleared: the phone now gets an empty override file. Reset its local settings too (see below).",
    ),
    (
        "account-created",
        "Account created: provisioning and Auto-Sync are on.",
    ),
    (
        "provisioning-enabled",
        "Provisioning enabled. Auto-Sync stays as it was.",
    ),
    (
        "provisioning-disabled",
        "Provisioning disabled: the account's phones are refused and Auto-Sync is off.",
    ),
    (
        "credentials-saved",
        "Server credentials updated: a new credential generation. If DHCP option 160 gives phones their credentials, update it now with the value under Service address.",
    ),
    ("autosync-on", "Auto-Sync is on."),
    (
        "line-saved-applying",
        "Line saved: the phone is sent check-sync now (the account applies changes at once).",
    ),
    (
        "line-removed-applying",
        "Line removed: the phone is sent check-sync now (the account applies changes at once).",
    ),
    (
        "tftp-credential-on",
        "The account credential is served over TFTP: anyone on the networks TFTP answers can read it, as from DHCP option 160.",
    ),
    (
        "tftp-credential-off",
        "The account credential is no longer served over TFTP.",
    ),
    (
        "ftp-factory-login-on",
        "The factory FTP login is accepted: phones at factory settings get what an unknown phone gets and the move to HTTP(S). FTP sends credentials in clear.",
    ),
    (
        "ftp-factory-login-off",
        "The factory FTP login is refused for this account's phones.",
    ),
    ("sip-saved", "SIP check-sync settings saved."),
    (
        "autosync-off",
        "Auto-Sync is off. No rollback: phones keep what they have.",
    ),
    ("autosync-options-saved", "Auto-Sync options saved."),
    (
        "address-regenerated",
        "New service address. The old one stays an alias while phones still use it.",
    ),
    ("alias-retired", "Alias retired."),
    (
        "readmitted",
        "Re-admitted: each device may use the credentials it holds once more and is sent the current ones.",
    ),
    ("site-added", "Site added."),
    ("site-deleted", "Site deleted."),
    ("site-assigned", "Site assignment saved."),
    ("group-added", "Group added."),
    ("group-saved", "Group saved."),
    ("group-deleted", "Group deleted."),
    ("members-saved", "Group membership saved."),
    ("policy-set", "Policy value set."),
    (
        "policy-set-unknown",
        "Policy value set. The parameter dictionary does not know this name: phones ignore names they do not know.",
    ),
    ("policy-removed", "Policy value removed."),
    (
        "policy-applying",
        "Policy saved and being applied now: check-sync goes to the phones it affects.",
    ),
    (
        "policy-applying-restarts-wait",
        "Policy saved and being applied now to the phones it does not restart; phones it restarts wait for their next poll (or an apply-now you confirm).",
    ),
    (
        "profile-applying",
        "Profile saved and being applied now: check-sync goes to its phones.",
    ),
    (
        "profile-applying-restarts-wait",
        "Profile saved and being applied now to the phones it does not restart; phones it restarts wait for their next poll (or an apply-now you confirm).",
    ),
    (
        "profile-restarts-wait",
        "Profile saved. It restarts its phones, so they wait for their next poll (or an apply-now you confirm).",
    ),
    (
        "policy-restarts-wait",
        "Policy saved. It restarts the phones it affects, so they wait for their next poll (or an apply-now you confirm).",
    ),
    ("settings-saved", "Provisioning settings saved."),
    (
        "push-started",
        "Files generated; every device is being pushed now (this page shows the progress).",
    ),
    ("variable-saved", "Custom variable saved."),
    (
        "variable-kept",
        "Nothing changed: the secret's stored value was kept (type a new value to replace it).",
    ),
    ("variable-deleted", "Custom variable deleted."),
    ("values-saved", "Template values saved."),
    ("line-saved", "Line saved."),
    ("line-removed", "Line removed."),
];

pub(crate) fn cookie(req: &Request, name: &str) -> Option<String> {
    rouille::input::cookies(req)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Compares secrets without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The segments of a request's path after `prefix`, each percent-decoded exactly once.
/// Read from the raw target: `Request::url()` is decoded already, and decoding its
/// segments again turned `%252e%252e%252f` into `../`.
pub fn path_segments(req: &Request, prefix: &str) -> Vec<String> {
    let raw = req.raw_url();
    let path = raw.split(['?', '#']).next().unwrap_or("");
    path.strip_prefix(prefix)
        .unwrap_or(path)
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
