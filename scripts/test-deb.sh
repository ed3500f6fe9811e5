#!/usr/bin/env bash
# Packaging test (run by .ci/run, as root): builds the .deb, checks that the binary is static
# and runs in an empty chroot, installs the package, checks files, user, permissions and the
# systemd units (the daily backup timer too), runs the installed binary the way the unit would,
# takes the scheduled backup as its unit does, provisions one phone,
# restores a backup and rotates the secrets key as root and as the service user (the service
# still serves the phone each time), reloads a changed limit with SIGHUP, checks the fail2ban
# filter against the server's log, upgrades to a rebuilt package with a bumped version (data
# kept), then purges.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  # Under CI a missing privilege is a failure, never a skip (as in the test suite).
  case "${CI:-}" in
    ""|0|false|FALSE|False) ;;
    *) echo "FAIL: scripts/test-deb.sh needs root under CI (dpkg -i, a system user, chroot)" >&2; exit 1 ;;
  esac
  echo "SKIP scripts/test-deb.sh: needs root (dpkg -i, a system user, chroot)"
  exit 0
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

WORK=$(mktemp -d)
cleanup() {
  [ -n "${ZPID:-}" ] && kill "$ZPID" 2>/dev/null || true
  dpkg --purge zerotouch >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "build the package"
cargo deb --target x86_64-unknown-linux-gnu --fast --output "$WORK/zerotouch_1.deb" >/dev/null
BIN=target/x86_64-unknown-linux-gnu/release/zerotouch

step "the binary is static"
ldd "$BIN" 2>&1 | grep -Eq "statically linked|not a dynamic executable" || fail "ldd: $(ldd "$BIN" 2>&1)"

step "it runs in an empty chroot (listen addresses as IPs, no NSS)"
mkdir -p "$WORK/chroot"
cp "$BIN" "$WORK/chroot/zerotouch"
printf 'data_dir = "/data"\ndevice.http_listen = "127.0.0.1:0"\nadmin.listen = "127.0.0.1:0"\n' > "$WORK/chroot/c.toml"
chroot "$WORK/chroot" /zerotouch serve --config /c.toml > "$WORK/chroot.log" 2>&1 &
CPID=$!
for _ in $(seq 50); do grep -qs "admin listening" "$WORK/chroot.log" && break; sleep 0.1; done
ADMIN=$(sed -n 's|.*admin listening on http://\(.*\)/|\1|p' "$WORK/chroot.log")
[ -n "$ADMIN" ] || fail "no start in chroot: $(cat "$WORK/chroot.log")"
curl -sf "http://$ADMIN/healthz" | grep -q '"status":"ok"' || fail "chroot server unhealthy"
kill "$CPID"; wait "$CPID" 2>/dev/null || true

step "install"
dpkg -i "$WORK/zerotouch_1.deb" >/dev/null
[ -x /usr/bin/zerotouch ] || fail "no /usr/bin/zerotouch"
/usr/bin/zerotouch --version | grep -q "zerotouch $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" || fail "version"
grep -q '^/etc/zerotouch/config.toml$' /var/lib/dpkg/info/zerotouch.conffiles || fail "config is not a conffile"
getent passwd zerotouch >/dev/null || fail "no zerotouch user"
[ "$(getent passwd zerotouch | cut -d: -f7)" = /usr/sbin/nologin ] || fail "the zerotouch user has a login shell"
[ "$(stat -c '%U %a' /var/lib/zerotouch)" = "zerotouch 750" ] || fail "/var/lib/zerotouch: $(stat -c '%U %a' /var/lib/zerotouch)"
[ "$(stat -c '%U:%G %a' /etc/zerotouch/config.toml)" = "root:zerotouch 640" ] || fail "config.toml: $(stat -c '%U:%G %a' /etc/zerotouch/config.toml)"
[ "$(stat -c '%U:%G %a' /etc/zerotouch/secret.key)" = "root:zerotouch 640" ] || fail "secret.key: $(stat -c '%U:%G %a' /etc/zerotouch/secret.key)"
/usr/bin/zerotouch check-config /etc/zerotouch/config.toml >/dev/null || fail "the packaged config does not check"
UNIT=/usr/lib/systemd/system/zerotouch.service
[ -f "$UNIT" ] || UNIT=/lib/systemd/system/zerotouch.service
for want in "ProtectSystem=strict" "ReadWritePaths=/var/lib/zerotouch" "NoNewPrivileges=yes" \
            "AmbientCapabilities=CAP_NET_BIND_SERVICE" "PrivateTmp=yes" "Restart=on-failure"; do
  grep -qx "$want" "$UNIT" || fail "unit lacks $want"
done
# The DHCP probe runs with two capabilities: it is hardened like the server otherwise.
PROBE="$(dirname "$UNIT")/zerotouch-dhcp-probe.service"
for want in "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes" "PrivateDevices=yes" \
            "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectKernelLogs=yes" \
            "ProtectControlGroups=yes" "ProtectClock=yes" "ProtectHostname=yes" "ProtectProc=invisible" \
            "RestrictNamespaces=yes" "RestrictRealtime=yes" "RestrictSUIDSGID=yes" "LockPersonality=yes" \
            "MemoryDenyWriteExecute=yes" "RemoveIPC=yes" "SystemCallArchitectures=native" \
            "SystemCallFilter=@system-service" "SystemCallFilter=~@privileged" \
            "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_BIND_SERVICE"; do
  grep -qx "$want" "$PROBE" || fail "the DHCP probe unit lacks $want"
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$UNIT" "$(dirname "$UNIT")/zerotouch-dhcp-probe.service" \
    "$(dirname "$UNIT")/zerotouch-backup.service" "$(dirname "$UNIT")/zerotouch-backup.timer" 2>&1 | tee "$WORK/verify.log"
  ! grep -Eiq "error|failed|unknown" "$WORK/verify.log" || fail "systemd-analyze verify"
fi

step "the daily backup timer: installed, enabled, its service hardened; the backup directory the service user's"
[ -f "$(dirname "$UNIT")/zerotouch-backup.timer" ] || fail "no zerotouch-backup.timer"
grep -qx "OnCalendar=daily" "$(dirname "$UNIT")/zerotouch-backup.timer" || fail "the timer is not daily"
grep -qx "ExecStart=/usr/bin/zerotouch backup --config /etc/zerotouch/config.toml" "$(dirname "$UNIT")/zerotouch-backup.service" \
  || fail "backup service ExecStart"
[ -e /etc/systemd/system/timers.target.wants/zerotouch-backup.timer ] || fail "the backup timer is not enabled"
[ "$(stat -c '%U %a' /var/backups/zerotouch)" = "zerotouch 700" ] || fail "/var/backups/zerotouch: $(stat -c '%U %a' /var/backups/zerotouch)"
grep -qx 'dir = "/var/backups/zerotouch"' /etc/zerotouch/config.toml || fail "the packaged config has no backup.dir"

step "run the installed binary the way the unit does (user zerotouch, the unit's config, port 80)"
ZT() { setpriv --reuid=zerotouch --regid=zerotouch --init-groups /usr/bin/zerotouch "$@" --config /etc/zerotouch/config.toml; }
ZT account set-credentials --user phones --password Deb-Test-Passw0rd >/dev/null
printf '<polycomConfig up.welcomeSoundEnabled="0"/>\n' > "$WORK/site.cfg"; chmod 644 "$WORK/site.cfg"; chmod 755 "$WORK"
ZT profile add office --file "$WORK/site.cfg" >/dev/null
ZT device add 0004f2a1b2c3 --profile office --sip-user 1001 >/dev/null
start_serve() {
  (cd /var/lib/zerotouch && setpriv --reuid=zerotouch --regid=zerotouch --init-groups \
     --inh-caps=+net_bind_service --ambient-caps=+net_bind_service \
     /usr/bin/zerotouch serve --config /etc/zerotouch/config.toml >> "$WORK/serve.log" 2>&1) &
  ZPID=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:80/ && break; sleep 0.1; done
}
stop_serve() {
  pkill -TERM -f "zerotouch serve --config /etc/zerotouch/config.toml" || true
  wait "$ZPID" 2>/dev/null || true; ZPID=
}
start_serve
UA='FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application'
[ "$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" http://127.0.0.1/0004f2a1b2c3.cfg)" = 401 ] || fail "no challenge"
curl -sf -A "$UA" -u phones:Deb-Test-Passw0rd http://127.0.0.1/0004f2a1b2c3.cfg | grep -q "0004f2a1b2c3-device.cfg" || fail "master file"
curl -sf -A "$UA" -u phones:Deb-Test-Passw0rd http://127.0.0.1/0004f2a1b2c3-device.cfg | grep -q 'reg.1.auth.userId="1001"' || fail "device file"
stop_serve
[ "$(stat -c '%U' /var/lib/zerotouch/zerotouch.db)" = zerotouch ] || fail "database owner"

# Every file of the data directory is the service user's (nothing left root's by a command).
owned_by_service() {
  local strays; strays=$(find /var/lib/zerotouch ! -user zerotouch -o ! -group zerotouch)
  [ -z "$strays" ] || fail "$1: not the service user's: $strays"
  [ "$(stat -c '%U:%G %a' /etc/zerotouch/secret.key)" = "root:zerotouch 640" ] \
    || fail "$1: secret.key is $(stat -c '%U:%G %a' /etc/zerotouch/secret.key)"
}
# The service, started as the unit starts it, serves the phone its device file.
serves_the_phone() {
  start_serve
  curl -sf -A "$UA" -u phones:Deb-Test-Passw0rd http://127.0.0.1/0004f2a1b2c3-device.cfg \
    | grep -q 'reg.1.auth.userId="1001"' || fail "$1: device file not served: $(tail -5 "$WORK/serve.log")"
  stop_serve
}

step "the scheduled backup as the timer's service runs it: an archive in backup.dir, the service user's, recorded for /metrics"
setpriv --reuid=zerotouch --regid=zerotouch --init-groups /usr/bin/zerotouch backup --config /etc/zerotouch/config.toml > "$WORK/scheduled.log" \
  || fail "scheduled backup: $(cat "$WORK/scheduled.log")"
ARCHIVE=$(ls /var/backups/zerotouch/zerotouch-*.tar.gz | head -1)
[ -n "$ARCHIVE" ] || fail "no archive in /var/backups/zerotouch"
[ "$(stat -c '%U %a' "$ARCHIVE")" = "zerotouch 600" ] || fail "scheduled archive: $(stat -c '%U %a' "$ARCHIVE")"
tar -tzf "$ARCHIVE" > "$WORK/scheduled.list"
grep -qx 'db/zerotouch.db' "$WORK/scheduled.list" || fail "the scheduled archive lacks the database: $(cat "$WORK/scheduled.list")"
[ -s /var/lib/zerotouch/last-backup ] || fail "the backup is not recorded"

step "backup and restore as root: the service's files, the key's owner and mode kept"
/usr/bin/zerotouch backup "$WORK/b1.tar.gz" --config /etc/zerotouch/config.toml >/dev/null
[ "$(stat -c '%U %a' "$WORK/b1.tar.gz")" = "root 600" ] || fail "archive: $(stat -c '%U %a' "$WORK/b1.tar.gz")"
tar -tzf "$WORK/b1.tar.gz" > "$WORK/b1.list"
grep -qx 'config/config.toml' "$WORK/b1.list" || fail "the backup lacks config.toml: $(cat "$WORK/b1.list")"
/usr/bin/zerotouch restore "$WORK/b1.tar.gz" --yes --config /etc/zerotouch/config.toml >/dev/null
owned_by_service "restore as root"
[ "$(stat -c '%a' /var/lib/zerotouch/zerotouch.db)" = 640 ] || fail "restored database mode"
serves_the_phone "after a restore as root"

step "restore as the service user"
install -m 0644 "$WORK/b1.tar.gz" "$WORK/b1-service.tar.gz"
ZT restore "$WORK/b1-service.tar.gz" --yes >/dev/null
owned_by_service "restore as the service user"
serves_the_phone "after a restore as the service user"

step "secrets rotate-key: as the service user it stops with nothing changed; as root it keeps root:zerotouch 0640"
KEY_BEFORE=$(sha256sum /etc/zerotouch/secret.key)
! ZT secrets rotate-key > "$WORK/rotate.log" 2>&1 || fail "rotate-key as the service user succeeded"
grep -q "as root" "$WORK/rotate.log" || fail "rotate-key as the service user: $(cat "$WORK/rotate.log")"
[ "$(sha256sum /etc/zerotouch/secret.key)" = "$KEY_BEFORE" ] || fail "the key changed"
/usr/bin/zerotouch secrets rotate-key --config /etc/zerotouch/config.toml >/dev/null
[ "$(sha256sum /etc/zerotouch/secret.key)" != "$KEY_BEFORE" ] || fail "the key did not change"
owned_by_service "rotate-key as root"
serves_the_phone "after rotate-key"

step "SIGHUP applies a changed limit and logs it; the fail2ban filter matches the refused credential"
start_serve
sed -i 's/^failure_limit = 20$/failure_limit = 1/' /etc/zerotouch/config.toml
kill -HUP "$(pgrep -f -n 'zerotouch serve --config /etc/zerotouch/config.toml')"
for _ in $(seq 50); do grep -q "applied: auth.failure_limit = 1" "$WORK/serve.log" && break; sleep 0.1; done
grep -q "applied: auth.failure_limit = 1" "$WORK/serve.log" || fail "reload not logged: $(tail -5 "$WORK/serve.log")"
CODES=$(for _ in 1 2; do curl -s -o /dev/null -w '%{http_code} ' -A "$UA" -u phones:wrong http://127.0.0.1/0004f2a1b2c3.cfg; done)
[ "$CODES" = "401 429 " ] || fail "the reloaded limit is not in force: $CODES"
stop_serve
sed -i 's/^failure_limit = 1$/failure_limit = 20/' /etc/zerotouch/config.toml
grep -q "refused device credential from 127.0.0.1 for 0004f2a1b2c3" "$WORK/serve.log" || fail "no refused-credential line"
if command -v fail2ban-regex >/dev/null; then
  fail2ban-regex "$WORK/serve.log" /usr/share/doc/zerotouch/examples/fail2ban/filter.d/zerotouch.conf > "$WORK/f2b.log" \
    || fail "fail2ban-regex: $(cat "$WORK/f2b.log")"
  grep -Eq '^Failregex: [1-9][0-9]* total' "$WORK/f2b.log" || fail "the filter matched nothing: $(cat "$WORK/f2b.log")"
else
  case "${CI:-}" in ""|0|false|FALSE|False) echo "SKIP fail2ban-regex: not installed" ;; *) fail "fail2ban-regex is not installed" ;; esac
fi

step "upgrade to a rebuilt package with a bumped version: data and config kept"
echo "# local edit" >> /etc/zerotouch/config.toml
cargo deb --target x86_64-unknown-linux-gnu --fast --no-build --deb-revision 2 --output "$WORK/zerotouch_2.deb" >/dev/null
dpkg -i --force-confold "$WORK/zerotouch_2.deb" >/dev/null
dpkg -s zerotouch | grep -q '^Version: .*-2$' || fail "not upgraded"
grep -q "# local edit" /etc/zerotouch/config.toml || fail "config edit lost on upgrade"
ZT device list | grep -q 0004f2a1b2c3 || fail "device lost on upgrade"

step "purge removes data and configuration"
dpkg --purge zerotouch >/dev/null
[ ! -e /var/lib/zerotouch ] || fail "/var/lib/zerotouch left behind"
[ ! -e /etc/zerotouch ] || fail "/etc/zerotouch left behind"
[ ! -e /usr/bin/zerotouch ] || fail "binary left behind"
[ -n "$(ls /var/backups/zerotouch/zerotouch-*.tar.gz)" ] || fail "purge removed the backups"
rm -rf /var/backups/zerotouch
echo "packaging test passed"
