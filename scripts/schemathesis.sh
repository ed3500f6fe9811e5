#!/usr/bin/env bash
# Checks the OpenAPI document against the live API: starts zerotouch on loopback ports with
# a temporary data directory, creates an admin API token and some data, and lets
# schemathesis (PyPI) generate requests for every operation, checking that no request gets
# a server error and that every status, content type and body matches the document.
# Bounded: a few examples per operation, a few minutes at most.
set -euo pipefail
cd "$(dirname "$0")/.."

ST=$(command -v schemathesis || command -v st || true)
if [ -z "$ST" ]; then
  echo "schemathesis is not installed (pip install schemathesis)" >&2
  exit 1
fi
cargo build --locked --quiet
BIN=target/x86_64-unknown-linux-gnu/debug/zerotouch   # .cargo/config.toml sets the target
DIR=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
cat > "$DIR/config.toml" <<CFG
data_dir = "$DIR/data"
device.http_listen = "127.0.0.1:0"
admin.listen = "127.0.0.1:0"
CFG
"$BIN" serve --config "$DIR/config.toml" > "$DIR/out.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  grep -q "admin listening on" "$DIR/out.log" && break
  sleep 0.1
done
ADMIN=$(sed -n 's|.*admin listening on http://\([^/]*\)/.*|\1|p' "$DIR/out.log")
[ -n "$ADMIN" ] || { cat "$DIR/out.log"; exit 1; }
TOKEN=$("$BIN" user token admin --name schemathesis --config "$DIR/config.toml")
"$BIN" profile add office --config "$DIR/config.toml" >/dev/null
"$BIN" device add 0004f2000001 --profile office --config "$DIR/config.toml" >/dev/null
printf '0004f2000004,,,office\n0004f200000x,,,office\n' > "$DIR/jobs.csv"
"$BIN" import "$DIR/jobs.csv" --config "$DIR/config.toml" >/dev/null 2>&1 || true
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"reference_id": "REF001", "last_name": "Kraus"}' "http://$ADMIN/api/v1/subscribers"

"$ST" run "http://$ADMIN/api/v1/openapi.json" \
  --url "http://$ADMIN/api/v1" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" \
  --request-timeout 10 \
  --no-color \
  --seed 42
