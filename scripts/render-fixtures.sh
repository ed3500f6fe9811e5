#!/usr/bin/env bash
# Renders what the fixture devices receive, as phones fetch it, into OUT (one file per
# response): a populated data directory — profiles made of the shared Polycom fixture files,
# devices with lines and vendor extensions, policies at every level, a second account, a
# credential rotation — served by BIN on loopback and fetched with curl as a VVX would.
#
#   scripts/render-fixtures.sh BIN OUT [FIXTURES]
#
# Run it with two binaries (before and after a change) and `diff -r` the outputs: a change
# that must not alter what phones receive shows no difference. FIXTURES defaults to
# ../shared/fixtures/polycom (or $ZEROTOUCH_FIXTURES).
set -euo pipefail

bin=$(realpath "$1")
out=$(realpath -m "$2")
fixtures=${3:-${ZEROTOUCH_FIXTURES:-$(dirname "$0")/../../shared/fixtures/polycom}}
fixtures=$(realpath "$fixtures")
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 2; }
[ -d "$fixtures" ] || { echo "no fixtures at $fixtures" >&2; exit 2; }

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
admin=$((port + 1))
cat > "$tmp/config.toml" <<EOF
data_dir = "$tmp/data"
[device]
http_listen = "127.0.0.1:$port"
https_listen = ""
[admin]
listen = "127.0.0.1:$admin"
EOF
z() { "$bin" "$@" --config "$tmp/config.toml"; }
zq() { z "$@" >/dev/null; }

zq migrate
printf 'Fleet-Passw0rd-1\n' | zq account set-credentials --user phones --password-stdin
zq enrol mode off
printf 'Branch-Passw0rd-1\n' | zq account add branch --user branch --password-stdin
zq enrol mode off --account branch

# Files keep no parameter only zerotouch sets (device.set, device.prov.*): refused at upload.
mkdir -p "$tmp/fixtures"
for f in "$fixtures"/*.cfg; do
  sed -E 's/[[:space:]]device\.(set|prov\.[A-Za-z0-9.]+|dhcp\.bootSrvUseOpt[A-Za-z.]*)="[^"]*"//g' "$f" \
    > "$tmp/fixtures/$(basename "$f")"
done
fixtures="$tmp/fixtures"
zq profile add common --file "$fixtures/site_wazo_v5_9_2_common.cfg" --polling enable
zq profile add shared --file "$fixtures/device_semenko_shared.cfg" \
  --file "$fixtures/perphone_legacy_wolrah_phone1.cfg" --language German_Germany
zq profile add branchp --account branch --file "$fixtures/site_wazo_v5_9_2_common.cfg" \
  --boot-server-option Static --option60-type ASCII
zq profile add video --vendor-model 'Polycom Video Endpoint'

zq device add 0004f2000001 --profile common --sip-server sip.example.com --sip-user 1001 \
  --sip-password 'Line-Secret-1' --display-name 'Front Desk' --line-label Desk
zq device add 0004f2000002 --profile shared --sip-server sip.example.com --outbound-proxy proxy.example.com \
  --sip-user 1002 --sip-password 'Line-Secret-2' --polling 0
zq device add 0004f2000003 --profile shared
zq device add 0004f2000004 --profile branchp --account branch --sip-server pbx.branch.example \
  --sip-user 2001 --sip-password 'Line-Secret-3'
zq device add 0004f2000005 --profile video

zq site add hq
zq site assign hq 0004f2000001 0004f2000002
zq group add lobby --priority 10
zq group add floor --priority 1
zq group add-member lobby 0004f2000002
zq group add-member floor 0004f2000002 0004f2000003
zq policy set account lcl.ml.lang English_United_Kingdom
zq policy set site:hq tcpIpApp.sntp.address ntp.hq.example
zq policy set group:floor up.backlight.idleIntensity 1
zq policy set group:lobby up.backlight.idleIntensity 3
zq policy set device:0004f2000003 reg.1.label Lab
zq policy set account device.dhcp.option60Type Binary

"$bin" serve --config "$tmp/config.toml" >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done

mkdir -p "$out"
ua='FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application'
fetch() { # name user password path
  curl -s -A "$ua" -u "$2:$3" -o "$out/$1" -w '%{http_code}\n' "http://127.0.0.1:$port$4" \
    > "$out/$1.status"
}
branch=$(z account show --account branch | awk '/^service address/ {print $NF}' | sed 's#.*:[0-9]*##')
for mac in 0004f2000001 0004f2000002 0004f2000003 0004f2000005; do
  for f in "$mac.cfg" "$mac-device.cfg" "$mac-profile.cfg" "$mac-profile-2.cfg"; do
    fetch "$f" phones Fleet-Passw0rd-1 "/$f"
  done
done
for f in 0004f2000004.cfg 0004f2000004-device.cfg 0004f2000004-profile.cfg; do
  fetch "$f" branch Branch-Passw0rd-1 "${branch%/}/$f"
done
for f in 000000000000.cfg 0004f2abcdef-stage.cfg; do
  fetch "$f" phones Fleet-Passw0rd-1 "/$f"
done
# A rotation: the generated file then carries the new credentials for phones not yet synced.
printf 'Fleet-Passw0rd-2\n' | zq account set-credentials --user phones --password-stdin --yes
fetch rotated-0004f2000003-device.cfg phones Fleet-Passw0rd-1 /0004f2000003-device.cfg
# What differs between runs by design: the port and the branch account's random service key.
key=${branch#/branch-}
key=${key%/}
sed -i -e "s/127\.0\.0\.1:$port/HOST/g" -e "s/$key/KEY/g" "$out"/*
echo "rendered $(ls "$out" | grep -vc status) responses into $out"
