//! Users and API tokens pages: the password page (forced after a one-time password), the
//! admin's user list (create, reset password, delete), and API tokens, shown once when
//! created and revocable at any time.
//!
//! Resetting a password, deleting a user and revoking a token each ask first: the list
//! links to a page saying what will happen, whose form posts `confirm=yes`; a POST without
//! it shows that page again and changes nothing.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::actions::signin;
use crate::db::users as q;
use crate::db::users::TokenRow;
use crate::domain::audit::Actor;
use crate::domain::users::{Action, Role};
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field, when};

pub fn password_page(ctx: &Ctx, problems: &[FieldError], notice: Option<&str>) -> Markup {
    views::page(
        "Change password",
        &ctx.nav(""),
        html! {
            div.narrow {
                h1 { "Change your password" }
                @if ctx.user.must_change_password {
                    div.notice { "You signed in with a one-time password. Choose your own password to continue." }
                }
                (views::notice(notice))
                (views::problems(problems))
                form method="post" action="/password" {
                    (csrf_field(&ctx.csrf))
                    (Field::text("Current password", "current_password", "", problems).kind("password").required())
                    (Field::text("New password", "new_password", "", problems).kind("password").required().hint("10 to 128 characters"))
                    (Field::text("Repeat the new password", "repeat_password", "", problems).kind("password").required())
                    button type="submit" { "Change password" }
                }
                p { a href="/totp" { "Two-factor sign-in" } " — set up or check your second factor." }
            }
        },
    )
}

pub fn post_password(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let mut conn = c.conn()?;
    match signin::change_password(
        &mut conn,
        &ctx.user,
        f.get("current_password"),
        f.get("new_password"),
        f.get("repeat_password"),
        Some(&ctx.token),
    ) {
        Ok(()) => Ok(done("/", "password-changed")),
        Err(Error::Invalid(p)) => Ok(html_page(422, password_page(ctx, &p, None))),
        Err(e) => Err(e),
    }
}

pub fn list(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    let users = rows(&*c.conn()?)?;
    Ok(html_page(
        200,
        users_page(ctx, &users, &[], notice_of(req), None),
    ))
}

/// A user as listed: where their password is checked, and whether they use a second
/// factor.
struct UserRow {
    user: crate::domain::users::User,
    source: q::Source,
    totp: bool,
    /// The accounts they act in, as typed in the form (`branch=installer, hq=viewer`);
    /// empty: every account.
    accounts: String,
}

fn rows(conn: &rusqlite::Connection) -> Result<Vec<UserRow>> {
    let kinds = q::list_sign_in_kinds(conn)?;
    let slugs = crate::actions::tenants::slugs(conn)?;
    Ok(q::list_users(conn)?
        .into_iter()
        .map(|user| {
            let (source, totp) = kinds
                .get(&user.id)
                .copied()
                .unwrap_or((q::Source::Local, false));
            let accounts = crate::actions::tenants::accounts_label(&slugs, &user);
            UserRow {
                user,
                source,
                totp,
                accounts,
            }
        })
        .collect())
}

/// The account roles typed in a form (`branch=installer, hq=viewer`; empty: every
/// account), each checked under `account_role`.
fn typed_accounts(f: &Form) -> Result<Option<Vec<(String, Role)>>> {
    let text = f.get("account_role");
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.split(',')
        .map(|t| crate::domain::users::parse_grant("account_role", t))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// `POST /users/{name}/accounts`: the accounts a user acts in (empty: every account).
pub fn set_accounts(c: &Console, ctx: &Ctx, name: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    let typed = typed_accounts(f)?;
    let mut conn = c.conn()?;
    crate::actions::tenants::set_user_accounts(
        &mut conn,
        &Actor::person(&ctx.user.username),
        name,
        typed.as_deref(),
    )?;
    Ok(done("/users", "user-accounts"))
}

/// A one-time password to show once, with why it exists.
enum OneTime<'a> {
    /// A new user `name`, with their password.
    Created(&'a str, &'a str),
    /// `name`'s password was reset to this one.
    Reset(&'a str, &'a str),
}

fn users_page(
    ctx: &Ctx,
    users: &[UserRow],
    problems: &[FieldError],
    notice: Option<&str>,
    shown: Option<OneTime<'_>>,
) -> Markup {
    views::page(
        "Users",
        &ctx.nav("users"),
        html! {
            h1 { "Users" }
            (views::notice(notice))
            @match shown {
                Some(OneTime::Created(name, pw)) => {
                    div.notice role="status" { "User " strong { (name) } " created. One-time password: " code.secret { (pw) } " — give it to them; they must change it at first sign-in. It is not shown again." }
                }
                Some(OneTime::Reset(name, pw)) => {
                    div.notice role="status" { "Password of " strong { (name) } " reset. One-time password: " code.secret { (pw) } " — give it to them; they must change it at their next sign-in. It is not shown again." }
                }
                None => {}
            }
            table.list {
                thead { tr { th { "User" } th { "Role" } th { "Company" } th { "Accounts" } th { "Sign-in" } th { "Password" } th { "Two-factor" } th { "Actions" } } }
                tbody {
                    @for row in users {
                        @let u = &row.user;
                        tr {
                            td { (u.username) } td { (u.role) } td { (u.company) }
                            td.accounts {
                                form.inline method="post" action=(format!("/users/{}/accounts", percent_encode(&u.username))) {
                                    (csrf_field(&ctx.csrf))
                                    label.sr-only for=(format!("accounts-{}", u.id)) { "Accounts of " (u.username) }
                                    input id=(format!("accounts-{}", u.id)) name="account_role" value=(row.accounts) placeholder="every account";
                                    " "
                                    button.link type="submit" { "Set" }
                                }
                            }
                            td.source { (row.source.as_str()) }
                            td { @if row.source == q::Source::Directory { "directory" } @else if u.must_change_password { "one-time" } @else { "set" } }
                            td.totp { @if row.totp { "on" } @else { "off" } }
                            td.ops {
                                @if row.totp {
                                    form.inline method="post" action=(format!("/users/{}/totp-remove", percent_encode(&u.username))) {
                                        (csrf_field(&ctx.csrf)) button.link type="submit" { "Remove two-factor" }
                                    }
                                }
                                a.reset href=(format!("/users/{}/reset", percent_encode(&u.username))) { "New one-time password" }
                                @if u.id != ctx.user.id {
                                    " " a.danger.delete href=(format!("/users/{}/delete", percent_encode(&u.username))) { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add a user" }
            (views::problems(problems))
            form method="post" action="/users" {
                (csrf_field(&ctx.csrf))
                div.grid {
                    (Field::text("User name", "username", "", problems).required())
                    div.field {
                        label for="role" { "Role" }
                        select id="role" name="role" {
                            @for r in Role::ALL { option value=(r.as_str()) selected[r == Role::Installer] { (r.as_str()) } }
                        }
                    }
                    (Field::text("Company", "company", "", problems).hint("installers see only devices their company associated"))
                    (Field::text("Accounts", "account_role", "", problems).hint("empty: every account with the role above; or ACCOUNT=ROLE, … (e.g. branch=installer): only these accounts, each with its role"))
                }
                button type="submit" { "Add user" }
            }
        },
    )
}

pub fn create(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    let mut conn = c.conn()?;
    let role = Role::parse(f.get("role"))?;
    let name = f.get("username").trim().to_string();
    let who = Actor::person(&ctx.user.username);
    let created = typed_accounts(f).and_then(|typed| {
        signin::create_user_in(
            &mut conn,
            &who,
            &name,
            (role, typed.as_deref()),
            f.get("company"),
            None,
        )
    });
    match created {
        Ok((_, pw)) => {
            let users = rows(&conn)?;
            Ok(html_page(
                200,
                users_page(
                    ctx,
                    &users,
                    &[],
                    None,
                    Some(OneTime::Created(&name, pw.as_deref().unwrap_or(""))),
                ),
            ))
        }
        Err(Error::Invalid(p)) => Ok(html_page(
            422,
            users_page(ctx, &rows(&conn)?, &p, None, None),
        )),
        Err(Error::Conflict(m)) => Ok(html_page(
            409,
            users_page(
                ctx,
                &rows(&conn)?,
                &[FieldError::new("username", m)],
                None,
                None,
            ),
        )),
        Err(e) => Err(e),
    }
}

/// A page asking to confirm what a button would do: `what` in plain words, the form that
/// posts `confirm=yes` to `action`, and a way back.
fn confirm_page(
    ctx: &Ctx,
    nav: &'static str,
    title: &str,
    what: Markup,
    (action, button, back): (&str, &str, &str),
) -> Markup {
    views::page(
        title,
        &ctx.nav(nav),
        html! {
            div.narrow {
                h1 { (title) }
                (what)
                form.confirm method="post" action=(action) {
                    (csrf_field(&ctx.csrf))
                    input type="hidden" name="confirm" value="yes";
                    div.actions {
                        button.danger type="submit" { (button) }
                        " "
                        a.button.secondary href=(back) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// The user `name`, or not found.
fn user_named(conn: &rusqlite::Connection, name: &str) -> Result<crate::domain::users::User> {
    q::find_user_by_name(conn, name)?.ok_or_else(|| Error::not_found(format!("user `{name}`")))
}

/// `GET /users/{name}/reset`: what a new one-time password does, and the form doing it.
pub fn confirm_reset(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    let user = user_named(&*c.conn()?, name)?;
    let action = format!("/users/{}/reset", percent_encode(&user.username));
    Ok(html_page(
        200,
        confirm_page(
            ctx,
            "users",
            &format!("Reset the password of {}?", user.username),
            html! {
                p { "A new one-time password replaces the password of " strong { (user.username) } ". It is shown to you once; give it to them, and they choose their own password at their next sign-in." }
                p { "They are signed out everywhere at once, and their API tokens are revoked: scripts using them must get a new token." }
            },
            (&action, "Reset password", "/users"),
        ),
    ))
}

/// `POST /users/{name}/reset`: with `confirm=yes`, a new one-time password, shown once;
/// without, the confirmation page (nothing changes).
pub fn reset(c: &Console, ctx: &Ctx, name: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    if f.get("confirm") != "yes" {
        return confirm_reset(c, ctx, name).map(|r| r.with_status_code(409));
    }
    let mut conn = c.conn()?;
    let pw = signin::reset_password(&mut conn, &Actor::person(&ctx.user.username), name, None)?;
    let users = rows(&conn)?;
    Ok(html_page(
        200,
        users_page(
            ctx,
            &users,
            &[],
            None,
            Some(OneTime::Reset(name, pw.as_deref().unwrap_or(""))),
        ),
    ))
}

/// Removes a user's second factor (lost authenticator): they are signed out everywhere.
pub fn remove_totp(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    crate::actions::totp::remove(&mut *c.conn()?, &Actor::person(&ctx.user.username), name)?;
    Ok(done("/users", "totp-removed"))
}

/// `GET /users/{name}/delete`: what deleting the user does, and the form doing it.
pub fn confirm_delete(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    let user = user_named(&*c.conn()?, name)?;
    let action = format!("/users/{}/delete", percent_encode(&user.username));
    Ok(html_page(
        200,
        confirm_page(
            ctx,
            "users",
            &format!("Delete the user {}?", user.username),
            html! {
                p { "The user " strong { (user.username) } " is deleted and can no longer sign in. Their sessions end at once (they are signed out everywhere), their API tokens stop working, and their two-factor sign-in is removed. This cannot be undone." }
                p { "What they changed stays as it is, and their entries in the audit log are kept." }
            },
            (&action, "Delete user", "/users"),
        ),
    ))
}

/// `POST /users/{name}/delete`: with `confirm=yes`, deletes the user; without, the
/// confirmation page (nothing changes).
pub fn delete(c: &Console, ctx: &Ctx, name: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    if f.get("confirm") != "yes" {
        return confirm_delete(c, ctx, name).map(|r| r.with_status_code(409));
    }
    signin::delete_user(&mut *c.conn()?, &Actor::person(&ctx.user.username), name)?;
    Ok(done("/users", "user-deleted"))
}

pub fn tokens(c: &Console, ctx: &Ctx, created: Option<&str>) -> Result<Response> {
    let conn = c.conn()?;
    let all = ctx.user.role == Role::Admin;
    let rows = q::list_tokens(&conn, if all { None } else { Some(ctx.user.id) })?;
    Ok(html_page(
        200,
        views::page(
            "API tokens",
            &ctx.nav("tokens"),
            html! {
                h1 { "API tokens" }
                p { "Tokens let scripts use the JSON API at " code { "/api/v1" } " (" a href="/api/v1/openapi.json" { "OpenAPI document" } ") as "
                    code { "Authorization: Bearer <token>" } ". A token acts with its user's role and company. Only a hash is stored." }
                @if let Some(t) = created {
                    div.notice { "New token (copy it now, it is not shown again): " code.secret { (t) } }
                }
                @if !rows.is_empty() {
                    table.list {
                        thead { tr { th { "Name" } th { "User" } th { "Starts with" } th { "Created" } th { "Last used" } th {} } }
                        tbody {
                            @for t in &rows {
                                tr {
                                    td { (t.name) } td { (t.username) } td { code { (t.prefix) "…" } } td { (when(Some(t.created_at))) } td { (when(t.last_used_at)) }
                                    td { a.danger href=(format!("/tokens/{}/delete", t.id)) { "Revoke" } }
                                }
                            }
                        }
                    }
                }
                h2 { "Create a token" }
                form method="post" action="/tokens" {
                    (csrf_field(&ctx.csrf))
                    (Field::text("Name", "name", "", &[]).required().hint("what uses it, e.g. provisioning-script"))
                    button type="submit" { "Create token" }
                }
            },
        ),
    ))
}

pub fn create_token(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let who = Actor::person(&ctx.user.username);
    let token = signin::create_token(&mut *c.conn()?, &who, &ctx.user, f.get("name"))?;
    tokens(c, ctx, Some(&token))
}

/// The token `id` the signed-in user may revoke (any, for an admin; else their own).
fn token_of(c: &Console, ctx: &Ctx, id: &str) -> Result<(i64, Option<i64>, TokenRow)> {
    let not_found = || Error::not_found(format!("API token `{id}`"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let only = if ctx.user.role == Role::Admin {
        None
    } else {
        Some(ctx.user.id)
    };
    let token = q::list_tokens(&*c.conn()?, only)?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(not_found)?;
    Ok((id, only, token))
}

/// `GET /tokens/{id}/delete`: what revoking the token does, and the form doing it.
pub fn confirm_revoke(c: &Console, ctx: &Ctx, id: &str) -> Result<Response> {
    let (id, _, t) = token_of(c, ctx, id)?;
    Ok(html_page(
        200,
        confirm_page(
            ctx,
            "tokens",
            &format!("Revoke the API token {}?", t.name),
            html! {
                p { "The token " strong { (t.name) } " of " (t.username) " (starts with " code { (t.prefix) "…" } ") stops working at once: requests carrying it are refused. This cannot be undone; a new token can be created." }
            },
            (&format!("/tokens/{id}/delete"), "Revoke token", "/tokens"),
        ),
    ))
}

/// `POST /tokens/{id}/delete`: with `confirm=yes`, revokes the token; without, the
/// confirmation page (nothing changes).
pub fn revoke_token(c: &Console, ctx: &Ctx, id: &str, f: &Form) -> Result<Response> {
    if f.get("confirm") != "yes" {
        return confirm_revoke(c, ctx, id).map(|r| r.with_status_code(409));
    }
    let (id, only, _) = token_of(c, ctx, id)?;
    signin::revoke_token(
        &mut *c.conn()?,
        &Actor::person(&ctx.user.username),
        id,
        only,
    )?;
    Ok(done("/tokens", "token-revoked"))
}
