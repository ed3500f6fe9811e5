//! Directory sign-in (issue 24, item 4) against a real OpenLDAP: each test starts its own
//! `slapd` on loopback ports with a generated configuration, database and test CA in a
//! temporary directory (the memberOf overlay keeps `memberOf`, ppolicy locks an account),
//! and a zerotouch whose `[directory]` points at it over LDAPS or StartTLS.
//!
//! The disabled user is an account locked with ppolicy (`pwdAccountLockedTime:
//! 000001010000Z`, what `slapo-ppolicy` calls administratively locked): its bind is refused
//! with the right password. Needs `slapd`, `ldap-utils` and `openssl` (`require`: a
//! failure under CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BASE: &str = "dc=example,dc=com";
const ROOT_DN: &str = "cn=root,dc=example,dc=com";
const ROOT_PW: &str = "root-test-secret";
/// The service account's password: must never appear in a log, an error or the database.
const BIND_PW: &str = "svc-Bind-Secret-7f3a9";

/// A running `slapd`, killed when dropped.
pub struct Slapd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub ldap: u16,
    pub ldaps: u16,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn slapd_bin() -> Option<PathBuf> {
    ["/usr/sbin/slapd", "/usr/local/sbin/slapd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir` (`name`-ca.pem, `name`.pem,
/// `name`.key).
fn make_ca(dir: &Path, name: &str) {
    let p = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(p(&format!("{name}-ca.key")))
        .arg("-out")
        .arg(p(&format!("{name}-ca.pem")))
        .args(["-subj", &format!("/CN={name} test CA")]));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(p(&format!("{name}.key")))
        .arg("-out")
        .arg(p(&format!("{name}.csr"))));
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p(&format!("{name}.csr")))
        .arg("-CA")
        .arg(p(&format!("{name}-ca.pem")))
        .arg("-CAkey")
        .arg(p(&format!("{name}-ca.key")))
        .arg("-out")
        .arg(p(&format!("{name}.pem")))
        .arg("-extfile")
        .arg(p("ext")));
}

const DATA: &str = "dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=default,dc=example,dc=com
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE

dn: cn=svc,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: svc
userPassword: svc-Bind-Secret-7f3a9

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Admin
userPassword: alice-password-1

dn: uid=ivan,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ivan
cn: Ivan
sn: Installer
userPassword: ivan-password-1

dn: uid=nora,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: nora
cn: Nora
sn: Nogroup
userPassword: nora-password-1

dn: uid=lars,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: lars
cn: Lars
sn: Locked
userPassword: lars-password-1

dn: cn=zt-admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: zt-admins
member: uid=alice,ou=people,dc=example,dc=com
member: uid=lars,ou=people,dc=example,dc=com

dn: cn=zt-installers,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: zt-installers
member: uid=ivan,ou=people,dc=example,dc=com

dn: cn=accounting,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: accounting
member: uid=nora,ou=people,dc=example,dc=com
";

impl Slapd {
    /// Starts slapd with the test directory loaded, or `None` (skipped) without it.
    pub fn start() -> Option<Slapd> {
        let bin = slapd_bin();
        if !require(
            bin.is_some() && have("ldapadd") && have("openssl"),
            "slapd, ldap-utils and openssl are needed (apt-get install slapd ldap-utils openssl)",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_ca(d, "server");
        std::fs::create_dir(d.join("db")).expect("db dir");
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile {d}/slapd.pid
TLSCACertificateFile {d}/server-ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
suffix \"{BASE}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PW}
directory {d}/db
overlay memberof
overlay ppolicy
ppolicy_default \"cn=default,{BASE}\"
access to attrs=userPassword by anonymous auth by * none
access to * by users read by anonymous auth
",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).expect("conf");
        std::fs::write(d.join("data.ldif"), DATA).expect("ldif");
        let (ldap, ldaps) = (free_port(), free_port());
        let child = Command::new(bin.expect("slapd"))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{ldap}/ ldaps://127.0.0.1:{ldaps}/"
            ))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd");
        let s = Slapd {
            child,
            dir,
            ldap,
            ldaps,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = s.ldap_tool("ldapadd", &["-f"], Some(&s.dir.path().join("data.ldif")));
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Lars is locked by an administrator: his bind is refused.
        let lock = s.dir.path().join("lock.ldif");
        std::fs::write(
            &lock,
            "dn: uid=lars,ou=people,dc=example,dc=com\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
        )
        .expect("lock");
        let out = s.ldap_tool("ldapmodify", &["-f"], Some(&lock));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(s)
    }

    fn ldap_tool(&self, tool: &str, args: &[&str], file: Option<&Path>) -> std::process::Output {
        let mut c = Command::new(tool);
        c.args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.ldap)])
            .args(["-D", ROOT_DN, "-w", ROOT_PW])
            .args(args);
        if let Some(f) = file {
            c.arg(f);
        }
        c.output().expect("ldap tool")
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("server-ca.pem")
    }

    /// The `[directory]` settings (dotted keys) for this server: `url` and `starttls` as
    /// given, the service account, the group mappings.
    pub fn config(&self, url: &str, starttls: bool, ca: &Path) -> String {
        let pw = self.dir.path().join("bind-password");
        std::fs::write(&pw, format!("{BIND_PW}\n")).expect("password file");
        directory_config(url, starttls, ca, &pw)
    }
}

fn directory_config(url: &str, starttls: bool, ca: &Path, pw: &Path) -> String {
    format!(
        "directory.enabled = true
directory.url = {url:?}
directory.starttls = {starttls}
directory.ca_file = {ca:?}
directory.bind_dn = \"cn=svc,{BASE}\"
directory.bind_password_file = {pw:?}
directory.user_base = \"ou=people,{BASE}\"
directory.user_attribute = \"uid\"
directory.timeout_secs = 5
directory.groups = [{{ group = \"cn=zt-admins,ou=groups,{BASE}\", role = \"admin\" }}, {{ group = \"CN=zt-installers, ou=groups,{BASE}\", role = \"installer\", company = \"acme\" }}]
"
    )
}

/// Every byte of the database and its WAL, for searching secrets in.
pub fn database_bytes(server: &ZServer) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["zerotouch.db", "zerotouch.db-wal"] {
        if let Ok(b) = std::fs::read(server.data_dir().join(f)) {
            all.extend(b);
        }
    }
    all
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn directory_users_sign_in_over_ldaps_with_the_role_of_their_group() {
    let Some(ldap) = Slapd::start() else { return };
    let url = format!("ldaps://127.0.0.1:{}", ldap.ldaps);
    let server = ZServer::start_with(&ldap.config(&url, false, &ldap.ca()));

    // Alice is in zt-admins: admin, straight to the console (no one-time password).
    let r = post_sign_in(&server, "alice", "alice-password-1");
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/"));
    let alice = cookie_of(&r);
    let users = get_with_cookie(&server, &alice, "/users");
    assert_eq!(
        users.status,
        200,
        "an admin sees the users: {}",
        users.text()
    );

    // Ivan is in zt-installers: an installer of acme, who may not manage users.
    let r = post_sign_in(&server, "ivan", "ivan-password-1");
    assert_eq!(r.status, 303, "{}", r.text());
    let ivan = cookie_of(&r);
    assert_eq!(get_with_cookie(&server, &ivan, "/users").status, 403);

    // The users page shows where each signs in, and the second factor.
    let page = get_with_cookie(&server, &alice, "/users").text();
    for name in ["alice", "ivan"] {
        let row = page
            .split("<tr>")
            .find(|r| r.contains(&format!("<td>{name}</td>")))
            .unwrap_or_else(|| panic!("{name} listed: {page}"));
        assert!(row.contains("class=\"source\">directory<"), "{row}");
        assert!(row.contains("class=\"totp\">off<"), "{row}");
    }
    assert!(page.contains("<td>installer</td><td>acme</td>"), "{page}");
    let admin_row = page
        .split("<tr>")
        .find(|r| r.contains("<td>admin</td><td>admin</td>"))
        .expect("local admin listed");
    assert!(admin_row.contains("class=\"source\">local<"), "{admin_row}");

    // A wrong password, as for an unknown user.
    let r = post_sign_in(&server, "alice", "not-her-password");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("Wrong user name or password."));

    // An empty password would be an unauthenticated bind, which LDAP accepts: refused here.
    let r = post_sign_in(&server, "ivan", "");
    assert_ne!(r.status, 303, "{}", r.text());

    // A directory user cannot set a local password.
    let csrf = csrf_of(&get_with_cookie(&server, &ivan, "/password").text());
    let r = post_raw(
        server.admin,
        "/password",
        &ivan,
        &form_body(&[
            ("csrf", &csrf),
            ("current_password", "ivan-password-1"),
            ("new_password", "a-local-password-1"),
            ("repeat_password", "a-local-password-1"),
        ]),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("managed by the directory"),
        "{}",
        r.text()
    );

    // The service account's password is in no log line and not in the database.
    let output = server.output.lock().expect("lock").clone();
    assert!(!output.contains(BIND_PW), "{output}");
    assert!(!contains(&database_bytes(&server), BIND_PW));
}

#[test]
fn a_group_mapped_to_an_account_signs_in_to_that_account_only() {
    let Some(ldap) = Slapd::start() else { return };
    let url = format!("ldaps://127.0.0.1:{}", ldap.ldaps);
    let config = ldap.config(&url, false, &ldap.ca());
    let groups = format!(
        "directory.groups = [{{ group = \"cn=accounting,ou=groups,{BASE}\", role = \"viewer\", account = \"branch\" }}, {{ group = \"cn=zt-installers,ou=groups,{BASE}\", role = \"installer\", company = \"acme\", account = \"nosuch\" }}]\n"
    );
    let config: String = config
        .lines()
        .filter(|l| !l.starts_with("directory.groups"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &groups;
    let server = ZServer::start_with(&config);
    add_account(&server, "branch", "Branch office");
    // Nora's group gives her the branch account only, as a viewer.
    let r = post_sign_in(&server, "nora", "nora-password-1");
    assert_eq!(r.status, 303, "{}", r.text());
    let nora = cookie_of(&r);
    let home = get_with_cookie(&server, &nora, "/");
    assert!(
        home.text()
            .contains("Account: <strong>Branch office</strong>"),
        "{}",
        home.text()
    );
    assert_eq!(
        get_with_cookie(&server, &nora, "/accounts/branch/inventory").status,
        200
    );
    assert_eq!(
        get_with_cookie(&server, &nora, "/accounts/default/inventory").status,
        404
    );
    // Ivan's group names an account this server does not have: refused, saying so.
    let r = post_sign_in(&server, "ivan", "ivan-password-1");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("accounts this server does not"),
        "{}",
        r.text()
    );
}

#[test]
fn locked_users_users_in_no_mapped_group_and_injected_names_are_refused() {
    let Some(ldap) = Slapd::start() else { return };
    let url = format!("ldaps://127.0.0.1:{}", ldap.ldaps);
    let server = ZServer::start_with(&format!(
        "{}console.login_failures_per_user = 1000\nconsole.login_failures_per_ip = 1000\n",
        ldap.config(&url, false, &ldap.ca())
    ));
    // Lars is in zt-admins but locked (ppolicy): refused like a wrong password.
    let r = post_sign_in(&server, "lars", "lars-password-1");
    assert_eq!(r.status, 401, "{}", r.text());
    // Nora's password is right but her only group is not mapped.
    let r = post_sign_in(&server, "nora", "nora-password-1");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("no group allowed"), "{}", r.text());
    // Injection characters are escaped: each name is looked for literally and not found,
    // even with a real password (unescaped, `al*` and `*)(uid=alice` would find alice).
    for name in [
        "*",
        ")(",
        "\\00",
        "al*",
        "*)(uid=alice",
        "alice)(|(uid=*",
        "alice\0",
    ] {
        let r = post_sign_in(&server, name, "alice-password-1");
        assert_eq!(r.status, 401, "{name:?}: {}", r.text());
        assert!(
            r.text().contains("Wrong user name or password."),
            "{name:?}: {}",
            r.text()
        );
    }
    let r = post_sign_in(&server, "nobody-at-all", "alice-password-1");
    assert_eq!(r.status, 401, "{}", r.text());
    // None of them got a users row.
    let admin = Session::admin(&server);
    let page = admin.get("/users").text();
    for name in ["lars", "nora", "nobody-at-all", "al*"] {
        assert!(
            !page.contains(&format!("<td>{name}</td>")),
            "{name}: {page}"
        );
    }
}

#[test]
fn starttls_works_and_a_server_certificate_from_another_ca_is_refused() {
    let Some(ldap) = Slapd::start() else { return };
    let url = format!("ldap://127.0.0.1:{}", ldap.ldap);
    let server = ZServer::start_with(&ldap.config(&url, true, &ldap.ca()));
    let r = post_sign_in(&server, "alice", "alice-password-1");
    assert_eq!(r.status, 303, "StartTLS: {}", r.text());
    drop(server);

    // The same server checked against another CA: unavailable, nothing sent in clear.
    let other = tempfile::tempdir().expect("tempdir");
    make_ca(other.path(), "other");
    let ldaps = format!("ldaps://127.0.0.1:{}", ldap.ldaps);
    let server =
        ZServer::start_with(&ldap.config(&ldaps, false, &other.path().join("other-ca.pem")));
    let r = post_sign_in(&server, "alice", "alice-password-1");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("directory unavailable"), "{}", r.text());
}

#[test]
fn with_the_directory_down_the_local_admin_signs_in_and_directory_users_are_told() {
    let Some(ldap) = Slapd::start() else { return };
    let url = format!("ldaps://127.0.0.1:{}", ldap.ldaps);
    let server = ZServer::start_with(&ldap.config(&url, false, &ldap.ca()));
    let r = post_sign_in(&server, "alice", "alice-password-1");
    assert_eq!(r.status, 303, "{}", r.text());
    // The directory goes down.
    drop(ldap);
    let r = post_sign_in(&server, "alice", "alice-password-1");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("directory unavailable"), "{}", r.text());
    // The local (break-glass) admin still signs in.
    let pw = admin_password(&server);
    let r = post_sign_in(&server, "admin", &pw);
    assert_eq!(r.status, 303, "{}", r.text());
    let output = server.output.lock().expect("lock").clone();
    assert!(!output.contains(BIND_PW), "{output}");
    assert!(!output.contains("alice-password-1"), "{output}");
}
