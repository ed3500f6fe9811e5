//! Second-factor pages: the code asked after the password (`/login/code`), the enrolment
//! forced on roles that require it (`/login/enrol`), and a signed-in user's own enrolment
//! (`/totp`): the QR code rendered here as SVG, the secret in text for apps that cannot
//! scan, a code to confirm, then the recovery codes, shown once. Sessions waiting for their
//! second factor reach only these pages; `actions::totp` decides everything.

use maud::{Markup, PreEscaped, html};
use rouille::{Request, Response};

use super::{COOKIE, Console, Ctx, Form, constant_time_eq, cookie, html_page};
use crate::actions::totp as act;
use crate::db::users as q;
use crate::domain::totp::TotpSecret;
use crate::domain::users::User;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, Nav, csrf_field};
use crate::http::engine::conn::Peer;

/// The QR code of an `otpauth://` address as inline SVG (no image library, no script).
fn qr_svg(url: &str) -> Markup {
    use qrcode::render::svg;
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<svg::Color<'_>>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build();
            // The XML declaration does not belong inside HTML.
            let start = svg.find("<svg").unwrap_or(0);
            PreEscaped(svg[start..].to_string())
        }
        Err(_) => html! { p { "(the QR code could not be drawn: type the key below)" } },
    }
}

fn enrol_form(
    user: &User,
    secret: &TotpSecret,
    csrf: &str,
    action: &str,
    problems: &[FieldError],
) -> Markup {
    let url = secret.otpauth_url(act::ISSUER, &user.username);
    html! {
        p { "Scan this code with an authenticator app (any app for time-based one-time passwords, RFC 6238), then type the six digits it shows." }
        div.qr { (qr_svg(&url)) }
        p { "Or type this key into the app: " code.secret #totp-secret { (secret.base32()) } }
        (views::problems(problems))
        form method="post" action=(action) {
            (csrf_field(csrf))
            (Field::text("Code from the app", "code", "", problems).required().hint("six digits"))
            button type="submit" { "Turn on two-factor sign-in" }
        }
    }
}

fn recovery_page(nav: &Nav, codes: &[String], next: &str) -> Markup {
    views::page(
        "Recovery codes",
        nav,
        html! {
            div.narrow {
                h1 { "Two-factor sign-in is on" }
                p { "Keep these recovery codes somewhere safe. Each signs you in once instead of a code from the app, if you lose it. They are not shown again." }
                ul #recovery-codes { @for c in codes { li { code.secret { (c) } } } }
                p { a href=(next) { "Continue" } }
            }
        },
    )
}

fn code_page(username: &str, csrf: &str, problem: Option<&str>) -> Markup {
    views::page(
        "Two-factor sign-in",
        &Nav::default(),
        html! {
            div.narrow {
                h1 { "Two-factor sign-in" }
                p { "Signing in as " strong { (username) } ". Type the code your authenticator app shows, or one of your recovery codes." }
                @if let Some(p) = problem { div.errors role="alert" { (p) } }
                form method="post" action="/login/code" {
                    (csrf_field(csrf))
                    div.field { label for="code" { "Code" } input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required; }
                    button type="submit" { "Sign in" }
                }
                form method="post" action="/login/cancel" { (csrf_field(csrf)) button.link type="submit" { "Cancel" } }
            }
        },
    )
}

/// The pages of a session that is not signed in yet: `/login/code`, `/login/enrol`,
/// `/login/cancel`.
pub fn staged(c: &Console, req: &Request, peer: &Peer) -> Response {
    match staged_inner(c, req, peer) {
        Ok(r) => r,
        Err(e) => c.error(None, &e),
    }
}

fn staged_inner(c: &Console, req: &Request, peer: &Peer) -> Result<Response> {
    let Some(token) = cookie(req, COOKIE) else {
        return Ok(Response::redirect_303("/login"));
    };
    let conn = c.conn()?;
    let (idle, _) = c.session_secs();
    let Some((user, csrf, stage)) =
        q::find_staged_session(&conn, &crate::actions::signin::token_hash(&token), idle)?
    else {
        return Ok(Response::redirect_303("/login"));
    };
    let form = if req.method() == "POST" {
        let f = Form::read(req)?;
        if !constant_time_eq(f.get("csrf").as_bytes(), csrf.as_bytes()) {
            return Err(Error::Forbidden(
                "the form's security token is missing or out of date: reload the page".into(),
            ));
        }
        Some(f)
    } else {
        None
    };
    let next = if user.must_change_password {
        "/password"
    } else {
        "/"
    };
    match (req.url().as_str(), stage.as_str(), form) {
        ("/login/cancel", _, Some(_)) => {
            let _ = crate::actions::signin::sign_out(&conn, &token);
            Ok(Response::redirect_303("/login"))
        }
        ("/login/code", "totp", None) => Ok(html_page(200, code_page(&user.username, &csrf, None))),
        ("/login/code", "totp", Some(f)) => {
            let ip = peer.addr.ip().to_string();
            match act::check(&conn, &c.throttle, &ip, &user, f.get("code")) {
                Ok(()) => {
                    act::finish_sign_in(&conn, &token)?;
                    Ok(Response::redirect_303(next))
                }
                Err(Error::Unauthorized) => Ok(html_page(
                    401,
                    code_page(&user.username, &csrf, Some("Wrong or already used code.")),
                )),
                Err(Error::TooManyAttempts(wait)) => Ok(html_page(
                    429,
                    code_page(
                        &user.username,
                        &csrf,
                        Some(&format!(
                            "Too many wrong codes. Wait {wait} seconds, then try again."
                        )),
                    ),
                )
                .with_additional_header("Retry-After", wait.to_string())),
                Err(e) => Err(e),
            }
        }
        ("/login/enrol", "enrol", form) => {
            let problems = match form {
                Some(f) => match act::confirm_enrolment(&conn, &user, f.get("code")) {
                    Ok(codes) => {
                        act::finish_sign_in(&conn, &token)?;
                        return Ok(html_page(200, recovery_page(&Nav::default(), &codes, next)));
                    }
                    Err(Error::Invalid(p)) => p,
                    Err(e) => return Err(e),
                },
                None => Vec::new(),
            };
            let secret = act::start_enrolment(&conn, &user)?;
            let status = if problems.is_empty() { 200 } else { 422 };
            Ok(html_page(
                status,
                views::page(
                    "Two-factor sign-in",
                    &Nav::default(),
                    html! {
                        div.narrow {
                            h1 { "Set up two-factor sign-in" }
                            div.notice { "Your role requires a second factor. Set it up to continue." }
                            (enrol_form(&user, &secret, &csrf, "/login/enrol", &problems))
                        }
                    },
                ),
            ))
        }
        (_, "totp", _) => Ok(Response::redirect_303("/login/code")),
        (_, "enrol", _) => Ok(Response::redirect_303("/login/enrol")),
        _ => Ok(Response::redirect_303("/login")),
    }
}

/// `/totp`: a signed-in user's own second factor (state, or enrolment).
pub fn page(c: &Console, ctx: &Ctx, f: Option<&Form>) -> Result<Response> {
    let conn = c.conn()?;
    let mut problems = Vec::new();
    if let Some(f) = f {
        match act::confirm_enrolment(&conn, &ctx.user, f.get("code")) {
            Ok(codes) => return Ok(html_page(200, recovery_page(&ctx.nav(""), &codes, "/"))),
            Err(Error::Invalid(p)) => problems = p,
            Err(e) => return Err(e),
        }
    }
    let body = if act::enabled(&conn, &ctx.user)? {
        let left = q::count_recovery_codes(&conn, ctx.user.id)?;
        html! {
            p { "Two-factor sign-in is on. Recovery codes left: " strong #recovery-left { (left) } "." }
            p.muted { "Lost your authenticator app? An admin can remove your second factor on the Users page; then set it up again here." }
        }
    } else {
        let secret = act::start_enrolment(&conn, &ctx.user)?;
        enrol_form(&ctx.user, &secret, &ctx.csrf, "/totp", &problems)
    };
    let status = if problems.is_empty() { 200 } else { 422 };
    Ok(html_page(
        status,
        views::page(
            "Two-factor sign-in",
            &ctx.nav(""),
            html! { div.narrow { h1 { "Two-factor sign-in" } (body) } },
        ),
    ))
}
