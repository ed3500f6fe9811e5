# Shared pieces of the benchmark scripts (sourced, not run): tools, ports, the release
# binary, a zerotouch data set of N associated phones, and nginx serving the same bytes.
# Everything listens on 127.0.0.1 only; nginx runs from a temp dir with its own config.

BENCH_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_LIB/../.." && pwd)
# .cargo/config.toml sets the target; ZT_BIN runs another build (a dynamic one for valgrind).
Z=${ZT_BIN:-"$TOP/target/x86_64-unknown-linux-gnu/release/zerotouch"}
BENCH_USER=phones
BENCH_PASS=Bench-Passw0rd-1

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx wrk python3 curl openssl)"; exit 1; }
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

build_release() {
  echo "building release binaries..."
  (cd "$TOP" && cargo build --release --quiet && cargo build --release --quiet --bench bootstorm)
}

# A work directory nginx workers (an unprivileged user) can read.
make_work() {
  WORK=$(mktemp -d)
  chmod 755 "$WORK"
}

# Waits until a URL answers at all (any status).
wait_http() { for _ in $(seq 600); do curl -sk -o /dev/null "$1" && return 0; sleep 0.05; done; return 1; }

# populate CONFIG DEVICES: credentials, a profile with one file and a firmware version, and
# DEVICES associated phones 0004f2000000.. (written with SQLite directly: fast).
populate() {
  local config=$1 devices=$2 data
  data=$(sed -n 's/^data_dir = "\(.*\)"/\1/p' "$config")
  "$Z" migrate --config "$config" >/dev/null
  "$Z" account set-credentials --config "$config" --user "$BENCH_USER" --password "$BENCH_PASS" >/dev/null
  cat > "$WORK/site.cfg" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<polycomConfig tcpIpApp.sntp.address="pool.ntp.org" up.welcomeSoundEnabled="0" voIpProt.server.1.address="sip.example.com"
  feature.enhancedFeatureKeys.enabled="1" dialplan.digitmap="[0123456789*#].T" lcl.datetime.time.24HourClock="1"
  prov.autoConfigUpload.enabled="1" voice.volume.persist.handset="1" up.mwiVisible="1" phoneLock.enabled="0"/>
XML
  # The profile's version must be in the firmware catalogue: import a release folder (an
  # image already put in $WORK/release-5.9.8.1234/ by the caller is kept, else a placeholder).
  local release="$WORK/release-5.9.8.1234"
  mkdir -p "$release"
  printf '5.9.8.1234\n' > "$release/sip.ver"
  [ -f "$release/3111-48500-001.sip.ld" ] || printf 'placeholder image\n' > "$release/3111-48500-001.sip.ld"
  "$Z" firmware import --config "$config" "$release" >/dev/null
  "$Z" profile add --config "$config" bench --file "$WORK/site.cfg" --software VVX=5.9.8.1234 --polling enable >/dev/null
  local profile_id
  profile_id=$(python3 -c "import sqlite3;print(sqlite3.connect('$data/zerotouch.db').execute(\"select id from profiles where name='bench'\").fetchone()[0])")
  python3 "$BENCH_LIB/populate.py" "$data/zerotouch.db" "$devices" "$profile_id"
  # The phones of the benchmarks hold the account credential (nginx has one user too), so the
  # account serves secrets to it, as installations did before withholding became the
  # default: the same path before and after. Phones on their own credentials are not
  # benchmarked yet (each phone and nginx would need its own user).
  "$Z" enrol mode off --config "$config" >/dev/null
}

# fetch_for_nginx HOST:PORT DEVICES ROOT: the steady-state bytes of every phone's three files.
fetch_for_nginx() { python3 "$BENCH_LIB/fetch_all.py" "$1" "$BENCH_USER" "$BENCH_PASS" "$2" "$3"; }

# write_nginx_conf CONF ROOT HTTP_PORT [HTTPS_PORT CERT KEY]: the same files, auth_basic with a
# {PLAIN} entry (an apr1 hash costs nginx a key derivation per request, which would flatter
# zerotouch), PUT for uploads (WebDAV), access log on like zerotouch's recording.
write_nginx_conf() {
  local conf=$1 root=$2 port=$3 sport=${4:-} cert=${5:-} key=${6:-}
  printf '%s:{PLAIN}%s\n' "$BENCH_USER" "$BENCH_PASS" > "$WORK/htpasswd"
  mkdir -p "$WORK/nginx-tmp"
  local tls_server=""
  if [ -n "$sport" ]; then
    tls_server="server { listen 127.0.0.1:$sport ssl; ssl_certificate $cert; ssl_certificate_key $key;
      ssl_session_cache off; ssl_session_tickets off; include $WORK/nginx-site.conf; }"
  fi
  cat > "$WORK/nginx-site.conf" <<NGINX
root $root;
auth_basic "bench";
auth_basic_user_file $WORK/htpasswd;
dav_methods PUT;
create_full_put_path on;
client_max_body_size 10m;
NGINX
  cat > "$conf" <<NGINX
worker_processes auto;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
  access_log $WORK/nginx-access.log;
  client_body_temp_path $WORK/nginx-tmp; proxy_temp_path $WORK/nginx-tmp; fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  types { application/xml cfg xml; application/octet-stream ld; }
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  sendfile on;
  server { listen 127.0.0.1:$port; include $WORK/nginx-site.conf; }
  $tls_server
}
NGINX
}
