//! Console commands: `user add|passwd|list|delete`, `import FILE`, `find ...` and `export`.
//! They act as an administrator of the machine (whoever may run them can read the database
//! anyway) through the same `actions` as the web console and the API.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use argh::FromArgs;

use crate::actions::Actor;
use crate::actions::import::{self, ImportRequest};
use crate::actions::signin;
use crate::db::find::{self, FindQuery, Sort, View};
use crate::db::users as uq;
use crate::domain::users::{Role, Scope, User};

/// manage console users
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "user")]
pub struct UserCmd {
    #[argh(subcommand)]
    pub action: UserAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum UserAction {
    Add(UserAdd),
    Accounts(UserAccounts),
    Passwd(UserPasswd),
    List(UserList),
    Delete(UserDelete),
    Token(UserToken),
    TotpRemove(UserTotpRemove),
}

/// remove a user's second factor (TOTP) and recovery codes, signing them out everywhere:
/// for a user, or the last admin, who lost their authenticator
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "totp-remove")]
pub struct UserTotpRemove {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// user name
    #[argh(positional)]
    pub username: String,
}

/// create an API token for a user (printed once; revoke it on the console's API Tokens page)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct UserToken {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// user name
    #[argh(positional)]
    pub username: String,
    /// what the token is for
    #[argh(option)]
    pub name: String,
}

/// add a user (prints a one-time password unless --password-stdin)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct UserAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// user name
    #[argh(positional)]
    pub username: String,
    /// role in every account: admin, provider, installer or viewer (omit with
    /// --account-role)
    #[argh(option)]
    pub role: Option<String>,
    /// a role in one account only, as ACCOUNT=ROLE (repeat for more accounts): the user
    /// then acts in these accounts alone
    #[argh(option)]
    pub account_role: Vec<String>,
    /// company (installers see only their company's devices)
    #[argh(option, default = "String::new()")]
    pub company: String,
    /// read the password from the first line of standard input
    #[argh(switch)]
    pub password_stdin: bool,
}

/// limit a user to accounts, each with a role, or make them act in every account again
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "accounts")]
pub struct UserAccounts {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// user name
    #[argh(positional)]
    pub username: String,
    /// a role in one account, as ACCOUNT=ROLE (repeat for more accounts)
    #[argh(option)]
    pub account_role: Vec<String>,
    /// act in every account with the user's role (instead of --account-role)
    #[argh(switch)]
    pub installation: bool,
}

/// set a new password (a one-time password unless --password-stdin)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "passwd")]
pub struct UserPasswd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// user name
    #[argh(positional)]
    pub username: String,
    /// read the password from the first line of standard input
    #[argh(switch)]
    pub password_stdin: bool,
}

/// list users
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct UserList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// delete a user (not the last admin)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct UserDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// user name
    #[argh(positional)]
    pub username: String,
}

/// associate devices from a bulk association CSV file (the ZTP guide's Tables 2 and 3)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct Import {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account to import into (its slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// the CSV file
    #[argh(positional)]
    pub file: PathBuf,
    /// check every line and report, without writing anything
    #[argh(switch)]
    pub dry_run: bool,
    /// link every device of the file to this reference ID
    #[argh(option)]
    pub reference_id: Option<String>,
    /// write the rejected lines (with reasons, re-uploadable) to this file
    #[argh(option)]
    pub rejected: Option<PathBuf>,
}

/// Find Operations: search associations (% is a wildcard)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "find")]
pub struct Find {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// search this account only (its slug; default: every account)
    #[argh(option)]
    pub account: Option<String>,
    /// first name
    #[argh(option, default = "String::new()")]
    pub first_name: String,
    /// last name
    #[argh(option, default = "String::new()")]
    pub last_name: String,
    /// reference ID
    #[argh(option, default = "String::new()")]
    pub reference_id: String,
    /// phone number
    #[argh(option, default = "String::new()")]
    pub phone: String,
    /// email
    #[argh(option, default = "String::new()")]
    pub email: String,
    /// city
    #[argh(option, default = "String::new()")]
    pub city: String,
    /// serial number
    #[argh(option, default = "String::new()")]
    pub serial: String,
    /// vendor model
    #[argh(option, default = "String::new()")]
    pub model: String,
    /// MAC address
    #[argh(option, default = "String::new()")]
    pub mac: String,
    /// configuration profile
    #[argh(option, default = "String::new()")]
    pub profile: String,
    /// subscriber status: complete or partial
    #[argh(option, default = "String::new()")]
    pub status: String,
    /// one row per device instead of per reference ID
    #[argh(switch)]
    pub device_view: bool,
    /// match capitals exactly (the default ignores case)
    #[argh(switch)]
    pub case_sensitive: bool,
    /// sort column: mac, serial, profile, reference_id, name, company, status, last_access
    #[argh(option, default = "String::new()")]
    pub sort: String,
    /// sort descending
    #[argh(switch)]
    pub desc: bool,
    /// most rows printed (default 1000)
    #[argh(option, default = "1000")]
    pub limit: usize,
    /// print CSV instead of a table
    #[argh(switch)]
    pub csv: bool,
}

/// export every association as a bulk association CSV, the account in column 15 (secrets
/// left out unless asked)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct Export {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// only this account (slug; default: every account)
    #[argh(option)]
    pub account: Option<String>,
    /// include provisioning and SIP passwords
    #[argh(switch)]
    pub include_secrets: bool,
    /// write to this file instead of standard output
    #[argh(option)]
    pub output: Option<PathBuf>,
}

/// The user the command line acts as.
fn cli_user() -> User {
    User {
        id: 0,
        username: "cli".into(),
        role: Role::Admin,
        company: String::new(),
        must_change_password: false,
        accounts: crate::domain::users::Accounts::Installation,
    }
}

/// `--account-role` values, each checked (the error names the option).
fn typed_grants(typed: &[String]) -> anyhow::Result<Vec<(String, crate::domain::users::Role)>> {
    Ok(typed
        .iter()
        .map(|t| crate::domain::users::parse_grant("--account-role", t))
        .collect::<crate::error::Result<_>>()?)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn user(action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add(a) => {
            let (_c, mut conn, _acc) = super::open(a.config.as_deref())?;
            let grants = typed_grants(&a.account_role)?;
            let role = match (&a.role, grants.is_empty()) {
                (Some(r), _) => Role::parse(r)?,
                (None, false) => crate::domain::users::Role::Viewer,
                (None, true) => anyhow::bail!("give --role, or --account-role ACCOUNT=ROLE"),
            };
            if a.role.is_some() && !grants.is_empty() {
                anyhow::bail!("give --role (every account) or --account-role, not both");
            }
            let password = if a.password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let (_, one_time) = signin::create_user_in(
                &mut conn,
                &crate::cli::os_user(),
                &a.username,
                (role, (!grants.is_empty()).then_some(grants.as_slice())),
                &a.company,
                password.as_deref(),
            )?;
            match one_time {
                Some(pw) => println!(
                    "user `{}` ({role}) created; one-time password: {pw} (change it at first sign-in)",
                    a.username
                ),
                None => println!("user `{}` ({role}) created", a.username),
            }
        }
        UserAction::Accounts(a) => {
            let (_c, mut conn, _acc) = super::open(a.config.as_deref())?;
            let grants = typed_grants(&a.account_role)?;
            let typed = match (a.installation, grants.is_empty()) {
                (true, true) => None,
                (false, false) => Some(grants.as_slice()),
                _ => anyhow::bail!("give either --account-role ACCOUNT=ROLE or --installation"),
            };
            crate::actions::tenants::set_user_accounts(
                &mut conn,
                &crate::cli::os_user(),
                &a.username,
                typed,
            )?;
            println!("accounts of `{}` changed", a.username);
        }
        UserAction::Passwd(p) => {
            let (_c, mut conn, _acc) = super::open(p.config.as_deref())?;
            let password = if p.password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let who = crate::cli::os_user();
            match signin::reset_password(&mut conn, &who, &p.username, password.as_deref())? {
                Some(pw) => println!(
                    "one-time password for `{}`: {pw} (change it at first sign-in)",
                    p.username
                ),
                None => println!("password of `{}` changed", p.username),
            }
        }
        UserAction::List(l) => {
            let (_c, conn, _acc) = super::open(l.config.as_deref())?;
            println!(
                "{:<24} {:<10} {:<24} {:<9} {:<10} {:<24} TWO-FACTOR",
                "USER", "ROLE", "COMPANY", "PASSWORD", "SOURCE", "ACCOUNTS"
            );
            let kinds = uq::list_sign_in_kinds(&conn)?;
            let slugs = crate::actions::tenants::slugs(&conn)?;
            for u in uq::list_users(&conn)? {
                let (source, totp) = kinds
                    .get(&u.id)
                    .copied()
                    .unwrap_or((uq::Source::Local, false));
                let accounts = match crate::actions::tenants::accounts_label(&slugs, &u) {
                    a if a.is_empty() => "every account".to_string(),
                    a => a,
                };
                println!(
                    "{:<24} {:<10} {:<24} {:<9} {:<10} {accounts:<24} {}",
                    u.username,
                    u.role,
                    u.company,
                    if source == uq::Source::Directory {
                        "directory"
                    } else if u.must_change_password {
                        "one-time"
                    } else {
                        "set"
                    },
                    source.as_str(),
                    if totp { "on" } else { "off" }
                );
            }
        }
        UserAction::Token(t) => {
            let (_c, mut conn, _acc) = super::open(t.config.as_deref())?;
            let user = uq::find_user_by_name(&conn, &t.username)?
                .with_context(|| format!("no user `{}`", t.username))?;
            let who = crate::cli::os_user();
            println!("{}", signin::create_token(&mut conn, &who, &user, &t.name)?);
        }
        UserAction::TotpRemove(t) => {
            let (_c, mut conn, _acc) = super::open(t.config.as_deref())?;
            crate::actions::totp::remove(&mut conn, &crate::cli::os_user(), &t.username)?;
            println!(
                "second factor of `{}` removed; they were signed out everywhere",
                t.username
            );
        }
        UserAction::Delete(d) => {
            let (_c, mut conn, _acc) = super::open(d.config.as_deref())?;
            signin::delete_user(&mut conn, &crate::cli::os_user(), &d.username)?;
            println!("user `{}` deleted", d.username);
        }
    }
    Ok(())
}

pub fn import(a: Import) -> anyhow::Result<std::process::ExitCode> {
    let (config, mut conn, account) =
        super::open_account(a.config.as_deref(), a.account.as_deref())?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let own = crate::actions::own_addresses(&config);
    let user = cli_user();
    let actor = Actor {
        user: &user,
        account: &account,
        own: &own,
        partial_expiry_secs: (config.console.partial_expiry_hours * 3600) as i64,
        who: crate::cli::os_user(),
    };
    let req = ImportRequest {
        file_name: a
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        reference_id: a.reference_id.clone(),
        dry_run: a.dry_run,
        max_rows: config.console.csv_max_rows,
    };
    let id = import::create_job(&conn, &actor, &req)?;
    let job = import::run_job(&mut conn, &actor, id, &req, &bytes)?;
    let rejected = crate::db::jobs::list_job_errors(&conn, id)?;
    for r in &rejected {
        eprintln!("{}:{}: {}", a.file.display(), r.line, r.reason);
    }
    if let Some(path) = &a.rejected {
        std::fs::write(path, crate::domain::csvimport::rejected_file(id, &rejected))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "job {id}: {} ({} line(s), {} {}, {} rejected){}",
        job.status,
        job.total_rows,
        job.applied_rows,
        if a.dry_run {
            "would be applied"
        } else {
            "applied"
        },
        job.rejected_rows,
        if job.message.is_empty() {
            String::new()
        } else {
            format!(": {}", job.message)
        }
    );
    Ok(match job.status.as_str() {
        "Completed" => std::process::ExitCode::SUCCESS,
        "Failed" => std::process::ExitCode::from(1),
        _ => std::process::ExitCode::from(2),
    })
}

pub fn find(f: Find) -> anyhow::Result<()> {
    let (_c, conn, acc) = super::open_account(f.config.as_deref(), f.account.as_deref())?;
    let accounts = f.account.is_some().then(|| vec![acc.id.0]);
    let sort = if f.sort.is_empty() {
        Sort::Default
    } else {
        Sort::parse(&f.sort).with_context(|| format!("--sort `{}` is not a column", f.sort))?
    };
    let q = FindQuery {
        first_name: f.first_name,
        last_name: f.last_name,
        reference_id: f.reference_id,
        phone: f.phone,
        email: f.email,
        city: f.city,
        serial: f.serial,
        model: f.model,
        mac: f.mac,
        profile: f.profile,
        status: f.status,
        ignore_case: !f.case_sensitive,
        accounts,
        view: if f.device_view {
            View::Device
        } else {
            View::Reference
        },
        sort,
        descending: f.desc,
    };
    let mut out = std::io::stdout().lock();
    if f.device_view {
        let rows = find::all_devices(&conn, &q, &Scope::All, f.limit)?;
        if f.csv {
            out.write_all(&find::devices_csv(&rows))?;
        } else {
            writeln!(
                out,
                "{:<12}  {:<14} {:<20} {:<20} {:<24} LAST ACCESS",
                "MAC", "SERIAL", "PROFILE", "REFERENCE ID", "NAME"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<12}  {:<14} {:<20} {:<20} {:<24} {}",
                    r.mac,
                    r.serial,
                    r.profile.unwrap_or_default(),
                    r.reference_id.unwrap_or_else(|| "--".into()),
                    format!("{} {}", r.first_name, r.last_name).trim(),
                    r.last_access
                        .map(crate::domain::time::format_time)
                        .unwrap_or_else(|| "--".into())
                )?;
            }
        }
    } else {
        let rows = find::all_subscribers(&conn, &q, &Scope::All, f.limit)?;
        if f.csv {
            out.write_all(&find::subscribers_csv(&rows))?;
        } else {
            writeln!(
                out,
                "{:<20} {:<24} {:<20} {:<16} {:<9} DEVICES",
                "REFERENCE ID", "NAME", "COMPANY", "CITY", "STATUS"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<20} {:<24} {:<20} {:<16} {:<9} {}",
                    r.reference_id,
                    format!("{} {}", r.first_name, r.last_name).trim(),
                    r.company,
                    r.city,
                    r.status,
                    r.devices
                )?;
            }
        }
    }
    Ok(())
}

pub fn export(e: Export) -> anyhow::Result<()> {
    let (_c, conn, _acc) = super::open(e.config.as_deref())?;
    let mut stmt = conn.prepare(
        "SELECT d.mac, d.serial, d.vendor_model, p.name, d.sip_server, d.outbound_proxy, d.prov_server,
                d.prov_user, d.prov_password, d.polling, coalesce(l.auth_user_id, ''),
                coalesce(l.auth_password, ''), coalesce(l.label, ''), coalesce(l.display_name, ''),
                d.id, a.slug
         FROM devices d JOIN profiles p ON p.id = d.profile_id
         JOIN accounts a ON a.id = d.account_id
         LEFT JOIN device_lines l ON l.device_id = d.id AND l.line = 1
         WHERE ?1 IS NULL OR a.slug = ?1
         ORDER BY a.slug, d.mac",
    )?;
    let mut text = String::new();
    let mut n = 0;
    if let Some(slug) = &e.account {
        crate::actions::accounts::find_account(&conn, Some(slug))?;
    }
    let mut rows = stmt.query([&e.account])?;
    while let Some(r) = rows.next()? {
        let mut fields: Vec<String> = (0..14)
            .map(|i| r.get::<_, String>(i))
            .collect::<Result<_, _>>()?;
        // Stored sealed: the export carries the passwords themselves, or none of them.
        use crate::db::secrets::{Credential, open_in};
        let id: i64 = r.get(14)?;
        fields[6] = open_in(Credential::DeviceServer(id), &fields[6])?;
        if e.include_secrets {
            fields[8] = open_in(Credential::DevicePassword(id), &fields[8])?;
            fields[11] = open_in(
                Credential::Line {
                    device_id: id,
                    line: 1,
                },
                &fields[11],
            )?;
        } else {
            fields[6] = crate::domain::provserver::strip_password(&fields[6]).into_owned();
            fields[8].clear();
            fields[11].clear();
        }
        if fields.iter().any(|f| f.contains(',')) {
            bail!(
                "device {} has a comma in a value, which the bulk format cannot hold",
                fields[0]
            );
        }
        // Column 15 names the account: a file of several accounts says whose each line
        // is, and `zerotouch import` takes only the lines of the account it imports into.
        fields.push(r.get(15)?);
        let cells: Vec<String> = fields
            .iter()
            .map(|f| crate::domain::csvcell::neutral(f).into_owned())
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
        n += 1;
    }
    match &e.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{n} association(s) written to {}{}",
                path.display(),
                if e.include_secrets {
                    ""
                } else {
                    " (without passwords)"
                }
            );
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}
