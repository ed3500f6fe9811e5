//! Users and API tokens pages: the password page (forced after a one-time password), the
//! admin's user list (create, reset password, delete), and API tokens, shown once when
//! created and revocable at any time.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::actions::signin;
use crate::db::users as q;
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

fn users_page(
    ctx: &Ctx,
    users: &[UserRow],
    problems: &[FieldError],
    notice: Option<&str>,
    created: Option<(&str, &str)>,
) -> Markup {
    views::page(
        "Users",
        &ctx.nav("users"),
        html! {
            h1 { "Users" }
            (views::notice(notice))
            @if let Some((name, pw)) = created {
                div.notice { "User " strong { (name) } " created. One-time password: " code.secret { (pw) } " — give it to them; they must change it at first sign-in. It is not shown again." }
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
                                form.inline method="post" action=(format!("/users/{}/reset", percent_encode(&u.username))) {
                                    (csrf_field(&ctx.csrf)) button.link type="submit" { "New one-time password" }
                                }
                                @if u.id != ctx.user.id {
                                    form.inline method="post" action=(format!("/users/{}/delete", percent_encode(&u.username))) {
                                        (csrf_field(&ctx.csrf)) button.link.danger type="submit" { "Delete" }
                                    }
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
                    Some((&name, pw.as_deref().unwrap_or(""))),
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

pub fn reset(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
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
            Some((name, pw.as_deref().unwrap_or(""))),
        ),
    ))
}

/// Removes a user's second factor (lost authenticator): they are signed out everywhere.
pub fn remove_totp(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
    crate::actions::totp::remove(&mut *c.conn()?, &Actor::person(&ctx.user.username), name)?;
    Ok(done("/users", "totp-removed"))
}

pub fn delete(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageUsers)?;
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
                                    td { form.inline method="post" action=(format!("/tokens/{}/delete", t.id)) { (csrf_field(&ctx.csrf)) button.link.danger type="submit" { "Revoke" } } }
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

pub fn revoke_token(c: &Console, ctx: &Ctx, id: &str) -> Result<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::not_found(format!("API token `{id}`")))?;
    let only = if ctx.user.role == Role::Admin {
        None
    } else {
        Some(ctx.user.id)
    };
    signin::revoke_token(
        &mut *c.conn()?,
        &Actor::person(&ctx.user.username),
        id,
        only,
    )?;
    Ok(done("/tokens", "token-revoked"))
}
