#!/usr/bin/env python3
"""Bench data: N associated devices in a zerotouch database, written directly with SQLite
(the CLI would take a process per device). Validation is skipped on purpose: the MACs and
values are generated well-formed. Usage: populate.py DB COUNT PROFILE_ID"""
import sqlite3, sys, time

db, count, profile_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = sqlite3.connect(db)
now = int(time.time())
account = conn.execute("SELECT id FROM accounts WHERE is_default = 1").fetchone()[0]
rows = []
for i in range(count):
    mac = "0004f2%06x" % i
    rows.append((account, mac, mac.upper(), profile_id, "sip%d.example.com" % (i % 10), now, now))
conn.executemany(
    "INSERT INTO devices (account_id, mac, serial, profile_id, sip_server, associated_at, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [r[:6] + (r[5], r[6]) for r in rows])
conn.executemany(
    "INSERT INTO device_lines (device_id, line, auth_user_id, auth_password, label, display_name)"
    " SELECT id, 1, ?, ?, ?, ? FROM devices WHERE mac = ?",
    [(str(1000 + i), "Line-Secret-%d" % i, str(1000 + i), "Phone %d" % i, "0004f2%06x" % i) for i in range(count)])
# Association opens each device's enrolment window until it enrols (schema 9 on; an older
# binary's database has no such column and no windows).
columns = [r[1] for r in conn.execute("PRAGMA table_info(enrolment_windows)")]
if "until_enrolled" in columns:
    conn.execute(
        "INSERT INTO enrolment_windows (account_id, mac, opened_at, closes_at, opened_by, until_enrolled)"
        " SELECT account_id, mac, ?, 9223372036854775807, 'bench', 1 FROM devices WHERE account_id = ?",
        (now, account))
conn.commit()
print("populated %d devices" % count)
