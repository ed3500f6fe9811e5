//! Console benchmarks (prints figures; not a timed test): a bulk association import of
//! 100,000 valid lines through the same job code the console and the API run, and Find
//! Operations over 1,000,000 associated devices with a prefix pattern and a `%contains%`
//! pattern, on a file database with the server's pragmas.
//!
//! Run: `cargo bench --bench console` (or `scripts/bench-console.sh`). Sizes can be changed
//! with `ZT_BENCH_IMPORT_ROWS` and `ZT_BENCH_DEVICES`.

use std::time::{Duration, Instant};

use zerotouch::actions::Actor;
use zerotouch::actions::import::{self, ImportRequest};
use zerotouch::actions::{accounts, profiles};
use zerotouch::db::find::{self, FindQuery, View};
use zerotouch::db::{self, jobs};
use zerotouch::domain::account::Account;
use zerotouch::domain::profile::ProfileFields;
use zerotouch::domain::provserver::OwnAddresses;
use zerotouch::domain::users::{Role, Scope, User};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn open(dir: &std::path::Path, name: &str) -> (rusqlite::Connection, Account) {
    let mut conn = db::open(&dir.join(name), Duration::from_secs(5)).expect("open");
    db::migrate(&mut conn).expect("migrate");
    let account = accounts::default_account(&conn).expect("account");
    let f = ProfileFields {
        name: "office".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        ..Default::default()
    };
    let user = zerotouch::actions::operator("bench");
    let own = OwnAddresses::default();
    let actor = Actor {
        user: &user,
        account: &account,
        own: &own,
        partial_expiry_secs: 3600,
        who: zerotouch::domain::audit::Actor::system(),
    };
    profiles::create_profile(
        &mut conn,
        &actor,
        &f,
        vec![],
        zerotouch::domain::lint::Transport::PlainHttp,
    )
    .expect("profile");
    (conn, account)
}

fn bench_import(dir: &std::path::Path) {
    let rows = env("ZT_BENCH_IMPORT_ROWS", 100_000);
    let (mut conn, account) = open(dir, "import.db");
    let user = User {
        id: 0,
        username: "bench".into(),
        role: Role::Admin,
        company: String::new(),
        must_change_password: false,
        accounts: zerotouch::domain::users::Accounts::Installation,
    };
    let own = OwnAddresses::default();
    let actor = Actor {
        user: &user,
        account: &account,
        own: &own,
        partial_expiry_secs: 3600,
        who: zerotouch::domain::audit::Actor::system(),
    };
    let mut csv = String::with_capacity(rows * 120);
    for i in 0..rows {
        csv.push_str(&format!(
            "{:012x},,Polycom_UCS_Device,office,sip.example.com,proxy.example.com,,,,1,{},Secret-{i},Line {i},User {i}\n",
            0x0004_f200_0000u64 + i as u64,
            1000 + i
        ));
    }
    let req = ImportRequest {
        file_name: "bench.csv".into(),
        reference_id: None,
        dry_run: false,
        max_rows: rows,
    };
    let start = Instant::now();
    let parsed = zerotouch::domain::csvimport::parse(csv.as_bytes(), rows).expect("parse");
    println!(
        "  parsing and checking {} lines alone: {:.2} s",
        parsed.rows.len(),
        start.elapsed().as_secs_f64()
    );
    let dry = ImportRequest {
        dry_run: true,
        ..req.clone()
    };
    let start = Instant::now();
    let id = import::create_job(&conn, &actor, &dry).expect("job");
    import::run_job(&mut conn, &actor, id, &dry, csv.as_bytes()).expect("dry run");
    println!(
        "  dry run (parse and every database check, no writes): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let id = import::create_job(&conn, &actor, &req).expect("job");
    let job = import::run_job(&mut conn, &actor, id, &req, csv.as_bytes()).expect("run");
    let took = start.elapsed();
    assert_eq!(job.applied_rows as usize, rows, "{}", job.message);
    let errors = jobs::list_job_errors(&conn, id).expect("errors");
    assert!(errors.is_empty());
    println!(
        "bulk import: {rows} valid lines ({:.1} MiB) in {:.2} s ({:.0} lines/s; target < 3 s)",
        csv.len() as f64 / (1024.0 * 1024.0),
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
}

fn populate(conn: &rusqlite::Connection, account: &Account, devices: usize) {
    let start = Instant::now();
    let subs = devices / 4;
    conn.execute_batch("BEGIN").expect("begin");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
         INSERT INTO subscribers (account_id, reference_id, first_name, last_name, city, email, status, created_at)
         SELECT ?1, printf('REF%08d', i), printf('First%d', i % 5000), printf('Last%06d', (i * 7919) % 1000003),
                printf('City%d', i % 300), printf('user%d@example.com', i), 'complete', 0 FROM n",
        rusqlite::params![account.id.0, subs as i64],
    )
    .expect("subscribers");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
         INSERT INTO devices (account_id, mac, serial, profile_id, subscriber_id, sip_server, created_at, updated_at)
         SELECT ?1, printf('%012x', (i * 2654435761) % 281474976710656), printf('SN%010d', i), 1, (i / 4) + 1,
                'sip.example.com', 0, 0 FROM n",
        rusqlite::params![account.id.0, devices as i64],
    )
    .expect("devices");
    conn.execute_batch("COMMIT; ANALYZE;").expect("commit");
    println!(
        "populated {devices} devices and {subs} reference IDs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn time_find(conn: &rusqlite::Connection, label: &str, q: &FindQuery, runs: usize, target: &str) {
    let mut times = Vec::with_capacity(runs);
    let mut total = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let page = match q.view {
            View::Device => {
                let p = find::find_devices(conn, q, &Scope::All, 0, 10).expect("find");
                (p.total, p.more)
            }
            View::Reference => {
                let p = find::find_subscribers(conn, q, &Scope::All, 0, 10).expect("find");
                (p.total, p.more)
            }
        };
        times.push(start.elapsed());
        total = page.0;
    }
    times.sort();
    if std::env::var_os("ZT_BENCH_PLAN").is_some() {
        let (sql, values) = q.id_sql(&Scope::All);
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(values), |r| {
                r.get::<_, String>(3)
            })
            .expect("plan")
            .map(|r| r.expect("row"))
            .collect();
        println!("  plan: {plan:?}");
    }
    println!(
        "find {label}: {total} match(es); p50 {} p95 {} max {} over {runs} runs ({target})",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(*times.last().expect("runs"))
    );
}

fn bench_find(dir: &std::path::Path) {
    let devices = env("ZT_BENCH_DEVICES", 1_000_000);
    let (conn, account) = open(dir, "find.db");
    populate(&conn, &account, devices);
    let device = |mac: &str| FindQuery {
        mac: mac.into(),
        view: View::Device,
        ignore_case: true,
        ..Default::default()
    };
    // Different prefixes per run would only help the page cache less; one pattern of each
    // kind, repeated, measures the query plan.
    time_find(
        &conn,
        "device view, MAC prefix `a1b%`",
        &device("a1b%"),
        50,
        "target p95 < 50 ms",
    );
    time_find(
        &conn,
        "device view, MAC prefix `a1b2c%`",
        &device("a1b2c%"),
        50,
        "target p95 < 50 ms",
    );
    let last = FindQuery {
        last_name: "last0042%".into(),
        ignore_case: true,
        ..Default::default()
    };
    time_find(
        &conn,
        "reference view, last name prefix `last0042%`",
        &last,
        50,
        "target p95 < 50 ms",
    );
    time_find(
        &conn,
        "device view, MAC `%c0ffe%`",
        &device("%c0ffe%"),
        20,
        "target p95 < 300 ms",
    );
    let serial = FindQuery {
        serial: "%4242%".into(),
        view: View::Device,
        ignore_case: true,
        ..Default::default()
    };
    time_find(
        &conn,
        "device view, serial `%4242%`",
        &serial,
        20,
        "target p95 < 300 ms",
    );
    let contains = FindQuery {
        last_name: "%00424%".into(),
        ignore_case: true,
        ..Default::default()
    };
    time_find(
        &conn,
        "reference view, last name `%00424%`",
        &contains,
        20,
        "target p95 < 300 ms",
    );
    let both = FindQuery {
        last_name: "%00424%".into(),
        view: View::Device,
        ignore_case: true,
        ..Default::default()
    };
    time_find(
        &conn,
        "device view, last name `%00424%`",
        &both,
        20,
        "target p95 < 300 ms",
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    bench_import(dir.path());
    bench_find(dir.path());
}
