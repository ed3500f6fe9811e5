//! Find Operations (the ZTP guide): the query builder behind the console's search, the API's
//! `/find` and `zerotouch find`.
//!
//! Values reach SQL only as bound parameters; the SQL text is assembled from fixed pieces
//! chosen by which fields are filled in, so no input can change the statement. `%` is the
//! only wildcard (the ZTP guide); `_` and `\` match themselves. "Ignore case" uses `LIKE` on the
//! NOCASE indexes of migration 0002, so prefix patterns (`k%`) become index range scans;
//! a case-sensitive search adds a `GLOB` filter on top. MACs are always lowercase and are
//! matched with `GLOB` on the unique MAC index. A page is found by collecting matching ids
//! in sort order up to a cap (one scan answers both the page and the count), then loading
//! the page's rows.

use rusqlite::types::Value;

pub use super::findrows::{
    DeviceHit, Page, SubscriberHit, all_devices, all_subscribers, devices_csv, find_devices,
    find_subscribers, subscribers_csv,
};
use crate::domain::users::Scope;

/// Matches counted exactly up to this many; beyond, the count is shown as "10000+".
pub const COUNT_CAP: usize = 10_000;

/// Which rows a search lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// One row per reference ID (the ZTP guide's default).
    #[default]
    Reference,
    /// One row per device.
    Device,
}

/// Columns a result can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Default,
    Mac,
    Serial,
    Profile,
    ReferenceId,
    Name,
    Company,
    Status,
    LastAccess,
}

impl Sort {
    pub const NAMES: [(&'static str, Sort); 8] = [
        ("mac", Sort::Mac),
        ("serial", Sort::Serial),
        ("profile", Sort::Profile),
        ("reference_id", Sort::ReferenceId),
        ("name", Sort::Name),
        ("company", Sort::Company),
        ("status", Sort::Status),
        ("last_access", Sort::LastAccess),
    ];

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::NAMES.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }

    pub fn name(self) -> &'static str {
        Sort::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .unwrap_or("")
    }
}

/// Every search field of the ZTP guide's Find Operations page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindQuery {
    pub first_name: String,
    pub last_name: String,
    pub reference_id: String,
    pub phone: String,
    pub email: String,
    pub city: String,
    pub serial: String,
    /// Vendor model.
    pub model: String,
    pub mac: String,
    /// Configuration profile name.
    pub profile: String,
    /// `partial` or `complete`; empty for both.
    pub status: String,
    pub ignore_case: bool,
    pub view: View,
    pub sort: Sort,
    pub descending: bool,
    /// Only rows of these accounts; `None`: every account. Set by `actions::tenants` from
    /// the acting user, never from a request.
    pub accounts: Option<Vec<i64>>,
}

/// Turns a seed-style pattern into a LIKE pattern (`%` kept; `_`, `\` escaped).
fn like_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if c == '_' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Turns a seed-style pattern into a GLOB pattern (`%` → `*`; `*`, `?`, `[` literal).
fn glob_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            '%' => out.push('*'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

struct Sql {
    wheres: Vec<String>,
    values: Vec<Value>,
}

impl Sql {
    fn text(&mut self, column: &str, pattern: &str, ignore_case: bool) {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return;
        }
        // `%` alone lists rows where the field is filled in (the ZTP guide).
        self.wheres.push(format!("{column} <> ''"));
        self.values.push(Value::Text(like_pattern(pattern)));
        self.wheres
            .push(format!("{column} LIKE ?{} ESCAPE '\\'", self.values.len()));
        if !ignore_case {
            self.values.push(Value::Text(glob_pattern(pattern)));
            self.wheres
                .push(format!("{column} GLOB ?{}", self.values.len()));
        }
    }

    fn mac(&mut self, pattern: &str) {
        let p: String = pattern
            .trim()
            .chars()
            .filter(|c| !":-.".contains(*c))
            .collect::<String>()
            .to_ascii_lowercase();
        if p.is_empty() {
            return;
        }
        self.values.push(Value::Text(glob_pattern(&p)));
        self.wheres
            .push(format!("d.mac GLOB ?{}", self.values.len()));
    }

    fn eq(&mut self, expr: &str, value: &str) {
        self.values.push(Value::Text(value.to_string()));
        self.wheres.push(format!("{expr} = ?{}", self.values.len()));
    }

    fn scope(&mut self, scope: &Scope, device: bool) {
        match scope {
            Scope::All => {}
            Scope::Company(c) if device => self.eq("d.owner_company", c),
            Scope::Company(c) => self.eq("s.owner_company", c),
            Scope::Provider(c) if device => {
                self.values.push(Value::Text(c.clone()));
                let n = self.values.len();
                self.wheres
                    .push(format!("(d.owner_company = ?{n} OR p.created_by = ?{n})"));
            }
            Scope::Provider(c) => self.eq("s.owner_company", c),
        }
    }

    /// Rows of these accounts only (`None`: every account); no account matches nothing.
    fn accounts(&mut self, column: &str, accounts: Option<&[i64]>) {
        let Some(ids) = accounts else { return };
        if ids.is_empty() {
            self.wheres.push("0".into());
            return;
        }
        let mut marks = Vec::with_capacity(ids.len());
        for id in ids {
            self.values.push(Value::Integer(*id));
            marks.push(format!("?{}", self.values.len()));
        }
        self.wheres
            .push(format!("{column} IN ({})", marks.join(", ")));
    }

    fn where_clause(&self) -> String {
        if self.wheres.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.wheres.join(" AND "))
        }
    }
}

impl FindQuery {
    /// Whether no filled-in pattern has a fixed prefix an index could seek to, and the
    /// device view is in MAC order (so the covering MAC-order index serves the scan).
    fn scan_only(&self) -> bool {
        let patterns = [
            &self.first_name,
            &self.last_name,
            &self.reference_id,
            &self.phone,
            &self.email,
            &self.city,
            &self.serial,
            &self.model,
            &self.mac,
            &self.profile,
        ];
        matches!(self.sort, Sort::Default | Sort::Mac)
            && patterns
                .iter()
                .all(|p| p.trim().is_empty() || p.trim().starts_with('%'))
    }

    fn has_device_fields(&self) -> bool {
        [&self.serial, &self.model, &self.mac, &self.profile]
            .iter()
            .any(|f| !f.trim().is_empty())
    }

    fn subscriber_filters(&self, sql: &mut Sql) {
        let ic = self.ignore_case;
        sql.text("s.first_name", &self.first_name, ic);
        sql.text("s.last_name", &self.last_name, ic);
        sql.text("s.reference_id", &self.reference_id, ic);
        sql.text("s.phone", &self.phone, ic);
        sql.text("s.email", &self.email, ic);
        sql.text("s.city", &self.city, ic);
        if matches!(self.status.as_str(), "partial" | "complete") {
            sql.eq("s.status", &self.status);
        }
    }

    fn device_filters(&self, sql: &mut Sql) {
        let ic = self.ignore_case;
        sql.text("d.serial", &self.serial, ic);
        sql.text("d.vendor_model", &self.model, ic);
        sql.mac(&self.mac);
        sql.text("p.name", &self.profile, ic);
    }

    fn order(&self) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        let key = match (self.view, self.sort) {
            (View::Device, Sort::Serial) => "d.serial COLLATE NOCASE",
            (View::Device, Sort::Profile) => "p.name COLLATE NOCASE",
            (View::Device, Sort::ReferenceId) => "s.reference_id",
            (View::Device, Sort::Name) => {
                "s.last_name COLLATE NOCASE {dir}, s.first_name COLLATE NOCASE"
            }
            (View::Device, Sort::Company) => "s.company COLLATE NOCASE",
            (View::Device, Sort::Status) => "s.status",
            (View::Device, Sort::LastAccess) => {
                "(SELECT last_seen FROM device_activity a WHERE a.device_id = d.id)"
            }
            (View::Device, _) => "d.mac",
            (View::Reference, Sort::Name) => {
                "s.last_name COLLATE NOCASE {dir}, s.first_name COLLATE NOCASE"
            }
            (View::Reference, Sort::Company) => "s.company COLLATE NOCASE",
            (View::Reference, Sort::Status) => "s.status",
            (View::Reference, _) => "s.reference_id",
        };
        let tie = if self.view == View::Device {
            "d.mac"
        } else {
            "s.reference_id"
        };
        format!("{} {dir}, {tie} {dir}", key.replace("{dir}", dir))
    }

    /// The SQL listing matching ids in order, with its parameters (for tests and EXPLAIN).
    pub fn id_sql(&self, scope: &Scope) -> (String, Vec<Value>) {
        let mut sql = Sql {
            wheres: Vec::new(),
            values: Vec::new(),
        };
        let text = match self.view {
            View::Device => {
                sql.wheres.push("d.profile_id IS NOT NULL".into());
                self.device_filters(&mut sql);
                // Customer fields filter through the reference IDs they match: SQLite
                // builds that set once, instead of joining a subscriber for every device.
                let mut inner = Sql {
                    wheres: Vec::new(),
                    values: std::mem::take(&mut sql.values),
                };
                self.subscriber_filters(&mut inner);
                sql.values = inner.values;
                let by_subscriber = !inner.wheres.is_empty();
                if by_subscriber {
                    sql.wheres.push(format!(
                        "d.subscriber_id IN (SELECT s.id FROM subscribers s WHERE {})",
                        inner.wheres.join(" AND ")
                    ));
                }
                sql.scope(scope, true);
                sql.accounts("d.account_id", self.accounts.as_deref());
                let order = self.order();
                // Join only what the sort and the filters use: a join the planner cannot
                // drop costs a lookup per scanned row.
                let mut from = String::from("devices d");
                if self.scan_only() && !by_subscriber {
                    // Every pattern starts with `%`: a scan is unavoidable, and the covering
                    // index in MAC order makes it one pass over the index alone.
                    from.push_str(" INDEXED BY devices_find");
                }
                if order.contains("s.") {
                    from.push_str(" LEFT JOIN subscribers s ON s.id = d.subscriber_id");
                }
                if order.contains("p.")
                    || !self.profile.trim().is_empty()
                    || matches!(scope, Scope::Provider(_))
                {
                    from.push_str(" LEFT JOIN profiles p ON p.id = d.profile_id");
                }
                format!(
                    "SELECT d.id FROM {from}{} ORDER BY {order}",
                    sql.where_clause()
                )
            }
            View::Reference => {
                self.subscriber_filters(&mut sql);
                sql.scope(scope, false);
                sql.accounts("s.account_id", self.accounts.as_deref());
                if self.has_device_fields() {
                    let mut inner = Sql {
                        wheres: vec!["d.subscriber_id = s.id".into()],
                        values: std::mem::take(&mut sql.values),
                    };
                    self.device_filters(&mut inner);
                    sql.values = inner.values;
                    sql.wheres.push(format!(
                        "EXISTS (SELECT 1 FROM devices d LEFT JOIN profiles p ON p.id = d.profile_id WHERE {})",
                        inner.wheres.join(" AND ")
                    ));
                }
                format!(
                    "SELECT s.id FROM subscribers s{} ORDER BY {}",
                    sql.where_clause(),
                    self.order()
                )
            }
        };
        (text, sql.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{accounts, open_in_memory};
    use rusqlite::Connection;

    fn setup() -> Connection {
        let conn = open_in_memory().expect("db");
        let (a, _) = accounts::ensure_default(&conn).expect("account");
        conn.execute_batch(&format!(
            "INSERT INTO profiles (account_id, name, created_by, created_at, updated_at) VALUES ({0}, 'office', 'prov', 0, 0);
             INSERT INTO subscribers (account_id, reference_id, first_name, last_name, city, status, owner_company, created_at)
                 VALUES ({0}, 'REF001', 'Karl', 'Kraus', 'Vienna', 'complete', 'acme', 0),
                        ({0}, 'REF002', 'kim', 'Lee', 'Seoul', 'complete', 'globex', 0),
                        ({0}, 'REF003', '', 'Partial', '', 'partial', 'acme', 0);
             INSERT INTO devices (account_id, mac, serial, profile_id, subscriber_id, owner_company, created_at, updated_at)
                 VALUES ({0}, '0004f2000001', '0004F2000001', 1, 1, 'acme', 0, 0),
                        ({0}, '0004f2000002', '0004F2000002', 1, 1, 'acme', 0, 0),
                        ({0}, '0004f2aa0003', 'SER_0003XXXX', 1, 2, 'globex', 0, 0);",
            a.id.0
        ))
        .expect("rows");
        conn
    }

    fn q() -> FindQuery {
        FindQuery {
            ignore_case: true,
            ..Default::default()
        }
    }

    fn macs(conn: &Connection, q: &FindQuery, scope: &Scope) -> Vec<String> {
        find_devices(conn, q, scope, 0, 100)
            .expect("find")
            .rows
            .into_iter()
            .map(|r| r.mac)
            .collect()
    }

    #[test]
    fn wildcards_and_case_follow_the_seed() {
        let conn = setup();
        let k = FindQuery {
            first_name: "k%".into(),
            ..q()
        };
        assert_eq!(
            find_subscribers(&conn, &k, &Scope::All, 0, 10)
                .expect("find")
                .total,
            2
        );
        let k_case = FindQuery {
            ignore_case: false,
            ..k.clone()
        };
        let hits = find_subscribers(&conn, &k_case, &Scope::All, 0, 10).expect("find");
        assert_eq!(
            hits.rows
                .iter()
                .map(|r| r.reference_id.as_str())
                .collect::<Vec<_>>(),
            vec!["REF002"]
        );
        let any = FindQuery {
            first_name: "%".into(),
            ..q()
        };
        assert_eq!(
            find_subscribers(&conn, &any, &Scope::All, 0, 10)
                .expect("find")
                .total,
            2,
            "% = filled in"
        );
        let mac = FindQuery {
            mac: "0004F2%".into(),
            ..q()
        };
        assert_eq!(macs(&conn, &mac, &Scope::All).len(), 3);
        let contains = FindQuery {
            mac: "%aa%".into(),
            ..q()
        };
        assert_eq!(macs(&conn, &contains, &Scope::All), vec!["0004f2aa0003"]);
        let underscore = FindQuery {
            serial: "SER_%".into(),
            ..q()
        };
        assert_eq!(macs(&conn, &underscore, &Scope::All), vec!["0004f2aa0003"]);
        let literal = FindQuery {
            serial: "SER%0003_XXX".into(),
            ..q()
        };
        assert!(
            macs(&conn, &literal, &Scope::All).is_empty(),
            "`_` is not a wildcard"
        );
        let partial = FindQuery {
            status: "partial".into(),
            ..q()
        };
        assert_eq!(
            find_subscribers(&conn, &partial, &Scope::All, 0, 10)
                .expect("find")
                .rows[0]
                .reference_id,
            "REF003"
        );
        let by_profile = FindQuery {
            profile: "OFF%".into(),
            ..q()
        };
        assert_eq!(
            find_subscribers(&conn, &by_profile, &Scope::All, 0, 10)
                .expect("find")
                .total,
            2
        );
    }

    #[test]
    fn scope_sorting_and_paging() {
        let conn = setup();
        let all = FindQuery {
            mac: "%".into(),
            sort: Sort::Mac,
            descending: true,
            ..q()
        };
        assert_eq!(
            macs(&conn, &all, &Scope::Company("acme".into())),
            vec!["0004f2000002", "0004f2000001"]
        );
        assert_eq!(
            macs(&conn, &all, &Scope::Provider("prov".into())).len(),
            3,
            "profiles they created"
        );
        let page = find_devices(&conn, &all, &Scope::All, 2, 2).expect("page");
        assert_eq!((page.total, page.rows.len(), page.more), (3, 1, false));
    }

    #[test]
    fn input_never_changes_the_statement() {
        let conn = setup();
        let evil = FindQuery {
            last_name: "x' OR '1'='1".into(),
            city: "%'; DROP TABLE devices; --".into(),
            ..q()
        };
        assert_eq!(
            find_subscribers(&conn, &evil, &Scope::All, 0, 10)
                .expect("find")
                .total,
            0
        );
        let n: i64 = conn
            .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 3);
    }

    #[test]
    fn prefix_searches_use_the_indexes() {
        let conn = setup();
        for (query, index) in [
            (
                FindQuery {
                    mac: "0004f2%".into(),
                    view: View::Device,
                    ..q()
                },
                "sqlite_autoindex_devices_1",
            ),
            (
                FindQuery {
                    last_name: "kr%".into(),
                    ..q()
                },
                "subscribers_last_name",
            ),
        ] {
            let (sql, values) = query.id_sql(&Scope::All);
            // As `findrows::matching_ids` runs it.
            let _plans = crate::db::BoundValuePlans::new(&conn).expect("plans");
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain");
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values), |r| {
                    r.get::<_, String>(3)
                })
                .expect("plan")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            assert!(plan.iter().any(|l| l.contains(index)), "{plan:?}");
        }
    }
}
