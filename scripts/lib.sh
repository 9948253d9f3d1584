# shellcheck shell=bash
# Shared by scripts/dev and scripts/test: the local control plane (etcd + kube-apiserver) and PostgreSQL 15,
# all on loopback, all state under $LANDLORD_DEV_DIR. Sourced, not run.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dev_dir=${LANDLORD_DEV_DIR:-$root/.dev}
cache_dir=${LANDLORD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/landlord}
pg_version=15
pg_bin=/usr/lib/postgresql/$pg_version/bin

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until "$@" succeeds, at most $1 seconds.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}

# Stops the process whose pid file is $1: SIGTERM, up to $2 seconds, then SIGKILL. Never leaves it behind.
stop_pidfile() {
  local pidfile=$1 grace=$2 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( $(date +%s) + grace ))
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop in ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_for 10 bash -c "! kill -0 $pid" || true
    fi
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------- PostgreSQL

ensure_postgres_installed() {
  [[ -x $pg_bin/postgres ]] && return 0
  command -v apt-get >/dev/null || die "PostgreSQL $pg_version is missing and there is no apt-get to install it"
  log "installing PostgreSQL $pg_version from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "postgresql-$pg_version" postgresql-contrib >&2
  [[ -x $pg_bin/postgres ]] || die "postgresql-$pg_version installed but $pg_bin/postgres is missing"
}

# Installs Debian's package $2 when the command $1 is missing; refreshes the package lists only if that fails.
ensure_command() {
  local cmd=$1 package=$2
  command -v "$cmd" >/dev/null && return 0
  command -v apt-get >/dev/null || die "$cmd is missing and there is no apt-get to install it"
  log "installing $package from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2; } \
    || die "could not install $package"
}

# What the tests use beyond the environment: landlord-health (hack/gitops), Flux's kstatus and Argo CD's own Lua
# health evaluator, for tests/gitops_health.rs and tests/argocd_health.rs, which find it in LANDLORD_GITOPS_HEALTH;
# and helm for the chart's tests (built here, before cargo runs tests side by side that would each start the cold build).
ensure_test_tools() {
  LANDLORD_GITOPS_HEALTH=$(gitops_health_binary) || die "landlord-health (hack/gitops) could not be built"
  export LANDLORD_GITOPS_HEALTH
  helm_binary >/dev/null
}

# What .ci/run lints with beyond cargo.
ensure_lint_tools() { ensure_command shellcheck shellcheck; }

# PostgreSQL refuses to run as root: run its programs as the postgres user when we are root.
as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Server $1's directory: 1 (the default) holds the landlord database, 2 is a second server for tenant databases.
pg_dir() {
  case ${1:-1} in
    1) echo "$dev_dir/pg" ;;
    2) echo "$dev_dir/pg2" ;;
    *) die "no PostgreSQL server $1: 1 or 2" ;;
  esac
}

# How many servers the last finished env_up started (1 for an environment from before there were two).
pg_servers() { cat "$dev_dir/pg-servers" 2>/dev/null || echo 1; }

# Starts the PostgreSQL server of directory $2 (default server 1's) on port $1 (a restart keeps its port), else on
# a free one, and makes its roles.
start_postgres() {
  local port=${1:-} pg=${2:-$dev_dir/pg}
  local data=$pg/data sock=$pg/sock
  ensure_postgres_installed
  mkdir -p "$pg" "$dev_dir/logs"
  [[ $(id -u) == 0 ]] && chown postgres: "$pg"
  if [[ ! -f $data/PG_VERSION ]]; then
    local pwfile=$pg/superuser.pw initdb_log=$dev_dir/logs/initdb-${pg##*/}.log
    openssl rand -hex 16 > "$pg/superuser.secret"
    as_pg mkdir -p "$sock"
    cp "$pg/superuser.secret" "$pwfile"
    [[ $(id -u) == 0 ]] && chown postgres: "$pwfile"
    as_pg "$pg_bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$initdb_log" 2>&1 \
      || die "initdb failed: see $initdb_log"
    rm -f "$pwfile"
  fi
  [[ -n $port ]] || port=$(free_port)
  echo "$port" > "$pg/port"
  # fsync=off survives a crash of PostgreSQL (what the tests make), only not one of the machine. Commits stay
  # synchronous: an immediate stop would lose the last ones, and with two servers a tenant ledger on one and
  # Landlord's record of it on the other would then disagree, as they never do in production.
  as_pg "$pg_bin/pg_ctl" -D "$data" -l "$pg/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$sock -c max_connections=200 -c fsync=off -c full_page_writes=off" \
    >/dev/null || die "PostgreSQL did not start: see $pg/postgres.log"
  init_landlord_roles "$pg"
}

# psql as the superuser on the server of directory $1, through its socket; the rest are psql's arguments.
psql_super() {
  local pg=$1; shift
  as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$pg/sock" -p "$(cat "$pg/port")" -U postgres "$@"
}

# The admin role (CREATEDB, CREATEROLE: creates and drops tenant databases) on the server of directory $1, and on
# server 1 only, the landlord role that owns the landlord database. Passwords are generated once per server and
# never printed to logs. roles.env is written only once the SQL has succeeded: its presence means the roles exist
# with these passwords. The SQL creates only what is missing and (re)sets the passwords, so a run after a failed
# one converges.
init_landlord_roles() {
  local pg=${1:-$dev_dir/pg} secrets admin_password landlord_password='' tmp
  secrets=$pg/roles.env
  [[ -f $secrets ]] && return 0
  admin_password=$(openssl rand -hex 16)
  [[ $pg == "$dev_dir/pg" ]] && landlord_password=$(openssl rand -hex 16)
  # log_min_error_statement: a failed statement must not reach postgres.log with a password in it.
  {
    cat <<SQL
SET log_min_error_statement = panic;
SELECT 'CREATE ROLE landlord_admin' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'landlord_admin') \\gexec
ALTER ROLE landlord_admin LOGIN CREATEDB CREATEROLE PASSWORD '$admin_password';
SQL
    [[ -z $landlord_password ]] || cat <<SQL
SELECT 'CREATE ROLE landlord' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'landlord') \\gexec
ALTER ROLE landlord LOGIN PASSWORD '$landlord_password';
SELECT 'CREATE DATABASE landlord OWNER landlord' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'landlord') \\gexec
ALTER DATABASE landlord OWNER TO landlord;
REVOKE CONNECT, TEMPORARY ON DATABASE landlord FROM PUBLIC;
SQL
    cat <<SQL
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
GRANT CONNECT ON DATABASE postgres TO landlord_admin;
SQL
  } | psql_super "$pg" -d postgres || die "could not create the landlord roles: see $pg/postgres.log"
  # Temp file + mv: never a half-written roles.env, and mktemp makes it 0600 before the passwords go in.
  tmp=$(mktemp "$secrets.XXXXXX")
  chmod 600 "$tmp"
  {
    printf 'admin_password=%s\n' "$admin_password"
    [[ -z $landlord_password ]] || printf 'landlord_password=%s\n' "$landlord_password"
  } > "$tmp"
  mv "$tmp" "$secrets"
}

# Stops the server of directory $1 (default server 1's), fast, else immediate.
stop_postgres() {
  local data=${1:-$dev_dir/pg}/data
  [[ -f $data/postmaster.pid ]] || return 0
  as_pg "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 \
    || as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------- control plane

etcd_binary() {
  local cached=$cache_dir/etcd-3.6.15/etcd
  if [[ ! -x $cached ]]; then
    local src
    src=$(cargo run -q --manifest-path "$root/hack/etcd/Cargo.toml" --target-dir "$cache_dir/etcd-target") \
      || die "could not build hack/etcd to locate the vendored etcd binary"
    mkdir -p "$(dirname "$cached")"
    cp "$src" "$cached.tmp" && mv "$cached.tmp" "$cached"
  fi
  echo "$cached"
}

start_etcd() {
  local etcd client peer
  etcd=$(etcd_binary)
  mkdir -p "$dev_dir/etcd" "$dev_dir/logs"
  client=$(free_port); peer=$(free_port)
  echo "http://127.0.0.1:$client" > "$dev_dir/etcd/url"
  setsid "$etcd" --data-dir "$dev_dir/etcd/data" --name landlord-dev \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "landlord-dev=http://127.0.0.1:$peer" \
    --unsafe-no-fsync --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) \
    >"$dev_dir/logs/etcd.log" 2>&1 < /dev/null &
  echo $! > "$dev_dir/etcd/pid"
  wait_for 30 curl -fsS "http://127.0.0.1:$client/health" || die "etcd did not become healthy: see $dev_dir/logs/etcd.log"
}

# Throwaway PKI as envtest makes it: a CA, a serving cert for 127.0.0.1/localhost, an admin client cert in
# system:masters, and a service-account signing key.
make_pki() {
  local pki=$dev_dir/pki
  [[ -f $pki/admin.crt ]] && return 0
  mkdir -p "$pki"
  (
    cd "$pki" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=landlord-dev-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout serving.key -out serving.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > serving.ext
    openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out serving.crt -days 30 -extfile serving.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=landlord-dev-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 30 -extfile admin.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
  )
}

# Starts kube-apiserver on port $1 (a restart keeps its port and kubeconfig), else on a free one.
start_kube_apiserver() {
  local apiserver port=${1:-} pki=$dev_dir/pki
  apiserver=$("$root/scripts/kube-build") || die "kube-apiserver could not be built"
  make_pki
  mkdir -p "$dev_dir/kube"
  [[ -n $port ]] || port=$(free_port)
  echo "https://127.0.0.1:$port" > "$dev_dir/kube/url"
  setsid "$apiserver" --etcd-servers "$(cat "$dev_dir/etcd/url")" --cert-dir "$dev_dir/kube/certs" \
    --tls-cert-file "$pki/serving.crt" --tls-private-key-file "$pki/serving.key" --client-ca-file "$pki/ca.crt" \
    --secure-port "$port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --service-cluster-ip-range 10.0.0.0/24 --authorization-mode RBAC \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --disable-admission-plugins ServiceAccount \
    >"$dev_dir/logs/kube-apiserver.log" 2>&1 < /dev/null &
  echo $! > "$dev_dir/kube/pid"
  write_kubeconfig "$port"
  wait_for 90 kubectl --kubeconfig "$dev_dir/kubeconfig" get --raw /readyz \
    || die "kube-apiserver did not become ready: see $dev_dir/logs/kube-apiserver.log"
}

write_kubeconfig() {
  local pki=$dev_dir/pki
  cat > "$dev_dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: landlord-dev
  cluster:
    server: https://127.0.0.1:$1
    certificate-authority: $pki/ca.crt
users:
- name: landlord-dev-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: landlord-dev
  context: {cluster: landlord-dev, user: landlord-dev-admin, namespace: default}
current-context: landlord-dev
YAML
  chmod 600 "$dev_dir/kubeconfig"
}

apply_crds() {
  kubectl --kubeconfig "$dev_dir/kubeconfig" apply --server-side --force-conflicts -f "$root/crds/landlord.yaml" >/dev/null
  kubectl --kubeconfig "$dev_dir/kubeconfig" wait --for condition=Established --timeout=60s \
    crd/tenants.tenancy.landlord.dev crd/moduleinstallations.tenancy.landlord.dev \
    crd/modulerollouts.tenancy.landlord.dev crd/databaseservers.tenancy.landlord.dev >/dev/null
}

# The environment a client of this playground needs, as shell exports.
print_env() {
  [[ -f $dev_dir/pg/roles.env ]] || die "no environment under $dev_dir: run scripts/dev up"
  local port admin_password landlord_password
  port=$(cat "$dev_dir/pg/port")
  # shellcheck disable=SC1091
  . "$dev_dir/pg/roles.env"
  cat <<ENV
export KUBECONFIG=$dev_dir/kubeconfig
export LANDLORD_ADMIN_DATABASE_URL=postgres://landlord_admin:$admin_password@127.0.0.1:$port/postgres
export LANDLORD_DATABASE_URL=postgres://landlord:$landlord_password@127.0.0.1:$port/landlord
export LANDLORD_DEV_SUPERUSER_URL=postgres://postgres:$(cat "$dev_dir/pg/superuser.secret")@127.0.0.1:$port/postgres
export LANDLORD_MODULES_DIR=$root/modules
export LANDLORD_MIGRATIONS_DIR=$root/migrations
export LANDLORD_PG_BIN_DIR=$pg_bin
ENV
  if [[ $(pg_servers) == 2 ]]; then
    port=$(cat "$dev_dir/pg2/port")
    # shellcheck disable=SC1091
    . "$dev_dir/pg2/roles.env" # server 2's own admin_password
    cat <<ENV
export LANDLORD_DEV_SERVER2_ADMIN_URL=postgres://landlord_admin:$admin_password@127.0.0.1:$port/postgres
export LANDLORD_DEV_SERVER2_SUPERUSER_URL=postgres://postgres:$(cat "$dev_dir/pg2/superuser.secret")@127.0.0.1:$port/postgres
ENV
  fi
}

# Whether PostgreSQL server $1 answers its superuser within 5 s.
postgres_answers() {
  PGCONNECT_TIMEOUT=5 psql_super "$(pg_dir "$1")" -d postgres -tAc 'select 1' >/dev/null 2>&1
}

# What keeps the environment under $dev_dir from being reused as it is with $1 PostgreSQL servers (default 2), or
# nothing when every part answers. A live kube-apiserver pid alone is not enough: PostgreSQL or etcd may be gone, or
# a start may have failed.
env_broken_part() {
  local servers=${1:-2}
  if [[ ! -f $dev_dir/env ]]; then
    echo "its last start did not finish"
  elif [[ $(pg_servers) != "$servers" ]]; then
    echo "it runs $(pg_servers) PostgreSQL server(s), not $servers"
  elif ! postgres_answers 1; then
    echo "PostgreSQL does not answer"
  elif (( servers == 2 )) && ! postgres_answers 2; then
    echo "PostgreSQL server 2 does not answer"
  elif ! curl -fsS --max-time 5 "$(cat "$dev_dir/etcd/url" 2>/dev/null)/health" >/dev/null 2>&1; then
    echo "etcd is not healthy"
  elif ! kill -0 "$(cat "$dev_dir/kube/pid" 2>/dev/null)" 2>/dev/null \
      || ! kubectl --kubeconfig "$dev_dir/kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    echo "kube-apiserver is not ready"
  fi
}

# Starts the environment with $1 PostgreSQL servers (default 2: tests always get both), or reuses a running one.
env_up() {
  local servers=${1:-2} broken
  [[ $servers == [12] ]] || die "$servers PostgreSQL servers: 1 or 2 only"
  mkdir -p "$dev_dir"
  broken=$(env_broken_part "$servers")
  if [[ -z $broken ]]; then
    log "already running under $dev_dir"
    return 0
  fi
  # Something was started here before: say why it is not reused.
  if [[ -f $dev_dir/kube/pid || -f $dev_dir/pg/data/postmaster.pid || -f $dev_dir/pg2/data/postmaster.pid \
      || -f $dev_dir/etcd/pid ]]; then
    log "not reusing $dev_dir ($broken): starting everything afresh"
  fi
  env_down
  log "starting PostgreSQL $pg_version"; start_postgres
  if (( servers == 2 )); then
    log "starting PostgreSQL $pg_version (server 2)"; start_postgres "" "$(pg_dir 2)"
  fi
  log "starting etcd"; start_etcd
  log "starting kube-apiserver"; start_kube_apiserver
  log "installing CRDs"; apply_crds
  echo "$servers" > "$dev_dir/pg-servers"
  print_env > "$dev_dir/env"
}

# Server $1's directory, if the last env_up started that server (left-over state of another start does not count).
started_pg_dir() {
  local pg
  pg=$(pg_dir "$1")
  if (( $1 > $(pg_servers) )) || [[ ! -f $pg/port ]]; then
    die "no PostgreSQL server $1 under $dev_dir"
  fi
  echo "$pg"
}

# Faults for the chaos suite and tests: PostgreSQL server $1 (default 1) stopped in immediate mode (as by a crash)
# and started again, or kube-apiserver stopped and started again, each on its port, so clients reconnect to the
# same address. crash_postgres and recover_postgres apart keep a server down for a while.
crash_postgres() {
  local server=${1:-1} pg
  pg=$(started_pg_dir "$server")
  [[ -f $pg/data/postmaster.pid ]] || { log "PostgreSQL server $server is not running"; return 0; }
  as_pg "$pg_bin/pg_ctl" -D "$pg/data" -m immediate -w -t 30 stop >/dev/null \
    || die "PostgreSQL server $server did not stop"
}

recover_postgres() {
  local server=${1:-1} pg
  pg=$(started_pg_dir "$server")
  if as_pg "$pg_bin/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
    log "PostgreSQL server $server is already running"
    return 0
  fi
  start_postgres "$(cat "$pg/port")" "$pg"
}

restart_postgres() {
  crash_postgres "${1:-1}"
  recover_postgres "${1:-1}"
}

restart_kube_apiserver() {
  local url
  url=$(cat "$dev_dir/kube/url")
  stop_pidfile "$dev_dir/kube/pid" 20
  start_kube_apiserver "${url##*:}"
}

# kube-apiserver first: with etcd already gone it hangs for minutes on SIGTERM.
env_down() {
  stop_pidfile "$dev_dir/operator.pid" 15
  stop_pidfile "$dev_dir/kube/pid" 20
  stop_pidfile "$dev_dir/etcd/pid" 20
  stop_postgres "$(pg_dir 1)"
  stop_postgres "$(pg_dir 2)"
}

# Runs "$@" against a throwaway environment under a new temporary LANDLORD_DEV_DIR, with its exports set;
# stops everything and deletes the directory on exit (printing the logs' tails in CI when "$@" failed).
in_fresh_env() {
  dev_dir=$(mktemp -d "${TMPDIR:-/tmp}/landlord-env.XXXXXX")
  export LANDLORD_DEV_DIR=$dev_dir
  chmod 755 "$dev_dir" # PostgreSQL runs as its own user and must reach its data directory
  trap fresh_env_cleanup EXIT
  trap 'exit 130' INT TERM
  local start
  start=$(date +%s)
  env_up 2
  log "environment up in $(( $(date +%s) - start ))s"
  set -a
  # shellcheck disable=SC1091
  . "$dev_dir/env"
  set +a
  "$@"
}

fresh_env_cleanup() {
  local status=$?
  env_down
  if (( status != 0 )) && [[ ${CI:-} == true ]]; then
    for f in "$dev_dir"/logs/*.log "$dev_dir"/pg/postgres.log "$dev_dir"/pg2/postgres.log; do
      [[ -f $f ]] && { echo "--- tail of $f"; tail -n 40 "$f"; }
    done >&2
  fi
  rm -rf "$dev_dir"
  exit "$status"
}

# ------------------------------------------------------------------------------ playground: operator + samples
# Only `scripts/dev up` calls these; tests (in_fresh_env) start their own operators.

samples_namespace=landlord-samples

kubectl_dev() { kubectl --kubeconfig "$dev_dir/kubeconfig" "$@"; }

operator_log_tail() {
  [[ -f $dev_dir/logs/operator.log ]] || return 0
  echo "--- last lines of $dev_dir/logs/operator.log" >&2
  tail -n "${1:-40}" "$dev_dir/logs/operator.log" >&2
}

# Builds Landlord and (re)starts `landlord run` in the background against the environment: every namespace
# watched, the leader Lease in `default`, /healthz /readyz /metrics on a free loopback port (written to
# $dev_dir/operator.addr), pid in $dev_dir/operator.pid (env_down stops it), log in $dev_dir/logs/operator.log.
start_operator() {
  local bin port
  log "building Landlord (cargo build --bin landlord)"
  (cd "$root" && cargo build --bin landlord) || die "cargo build --bin landlord failed"
  bin=${CARGO_TARGET_DIR:-$root/target}/debug/landlord
  [[ -x $bin ]] || die "cargo built no $bin"
  stop_pidfile "$dev_dir/operator.pid" 15
  port=$(free_port)
  echo "127.0.0.1:$port" > "$dev_dir/operator.addr"
  mkdir -p "$dev_dir/logs"
  log "starting the operator (log: $dev_dir/logs/operator.log)"
  (
    set -a
    # shellcheck disable=SC1091
    . "$dev_dir/env"
    set +a
    # The operator gets its two roles, never a superuser.
    unset LANDLORD_DEV_SUPERUSER_URL LANDLORD_DEV_SERVER2_SUPERUSER_URL
    export LANDLORD_HTTP_ADDR=127.0.0.1:$port POD_NAME=landlord-dev RUST_LOG=${RUST_LOG:-info}
    exec env LANDLORD_LEASE_NAMESPACE="$(lease_namespace)" setsid "$bin" run
  ) >>"$dev_dir/logs/operator.log" 2>&1 </dev/null &
  echo $! > "$dev_dir/operator.pid"
  if ! wait_for 60 curl -fsS "http://127.0.0.1:$port/readyz"; then
    operator_log_tail
    die "the operator did not become ready on 127.0.0.1:$port"
  fi
}

# Waits at most $1 seconds until every Tenant, ModuleInstallation and ModuleRollout of the samples is Ready; fails early
# when the operator has exited.
wait_samples_ready() {
  local deadline=$(( $(date +%s) + $1 ))
  until kubectl_dev wait -n "$samples_namespace" --for=condition=Ready tenants,moduleinstallations,modulerollouts --all \
      --timeout=5s >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$dev_dir/operator.pid" 2>/dev/null)" 2>/dev/null; then
      log "the operator has exited"
      return 1
    fi
    (( $(date +%s) < deadline )) || return 1
  done
}

# Where start_operator's operator keeps its Lease: LANDLORD_LEASE_NAMESPACE, else `default`.
lease_namespace() { echo "${LANDLORD_LEASE_NAMESPACE:-default}"; }

# The operator's namespace as start_operator runs it: POD_NAMESPACE, else the Lease's namespace. The admin Secrets
# of DatabaseServers are read there.
operator_namespace() { echo "${POD_NAMESPACE:-$(lease_namespace)}"; }

# The admin Secret of the sample DatabaseServer `second` (deploy/samples/servers.yaml): server 2's admin URL under
# the key uri, in the operator's namespace. Given on standard input, so that the password is in no command line.
create_server2_secret() {
  local url
  # shellcheck disable=SC1091
  url=$(. "$dev_dir/env" && echo "$LANDLORD_DEV_SERVER2_ADMIN_URL")
  [[ -n $url ]] || die "no LANDLORD_DEV_SERVER2_ADMIN_URL in $dev_dir/env"
  kubectl_dev apply -f - >/dev/null <<YAML || die "could not create the Secret landlord-server-second"
apiVersion: v1
kind: Secret
metadata:
  name: landlord-server-second
  namespace: $(operator_namespace)
type: Opaque
stringData:
  uri: '$url'
YAML
}

# The samples the playground applies. With two PostgreSQL servers, deploy/samples: the DatabaseServer `second` on
# server 2 and globex placed on it. With one (`scripts/dev up --servers 1`), deploy/samples/base: the same Tenants,
# modules and rollout, all on `default`, and no DatabaseServer.
samples_dir() {
  if [[ $(pg_servers) == 2 ]]; then echo deploy/samples; else echo deploy/samples/base; fi
}

# The playground on top of env_up: the operator, the samples (its DatabaseServer's admin Secret made first), Ready,
# and what to do next.
playground_up() {
  local timeout=${LANDLORD_DEV_READY_TIMEOUT:-180} samples
  samples=$(samples_dir)
  start_operator
  if [[ $(pg_servers) == 2 ]]; then
    log "creating the Secret landlord-server-second (server 2's admin URL) in namespace $(operator_namespace)"
    create_server2_secret
  fi
  log "applying $samples"
  kubectl_dev apply -k "$root/$samples" >/dev/null || die "kubectl apply -k $samples failed"
  log "waiting for the samples to be Ready (at most ${timeout}s)"
  if ! wait_samples_ready "$timeout"; then
    kubectl_dev get tenants,moduleinstallations,modulerollouts -n "$samples_namespace" -o wide >&2 || true
    kubectl_dev get databaseservers -o wide >&2 || true
    operator_log_tail 60
    die "the samples did not all become Ready in ${timeout}s (everything is still running: look, then scripts/dev down)"
  fi
}

print_playground() {
  local addr rel
  addr=$(cat "$dev_dir/operator.addr")
  rel=scripts/dev
  [[ $dev_dir == "$root/.dev" ]] || rel="LANDLORD_DEV_DIR=$dev_dir scripts/dev"
  echo
  echo "\$ kubectl get tenants,moduleinstallations,modulerollouts -A"
  kubectl_dev get tenants,moduleinstallations,modulerollouts -A
  if [[ $(pg_servers) == 2 ]]; then
    echo
    echo "\$ kubectl get databaseservers"
    kubectl_dev get databaseservers
  fi
  cat <<TEXT

The playground is up: PostgreSQL 15 ($(pg_servers) server(s)), etcd and kube-apiserver on 127.0.0.1, the operator
(pid $(cat "$dev_dir/operator.pid"), log $dev_dir/logs/operator.log, metrics http://$addr/metrics) and the samples of
$(samples_dir).

Continue with:
  eval "\$($rel env)"          # KUBECONFIG and the database URLs in this shell
  kubectl get tenants,moduleinstallations,modulerollouts -A -o wide   # column Server: where each database is
  kubectl get dbs                  # the DatabaseServers (two servers only): tenants, cap, cordoned, version, Ready
  kubectl -n $samples_namespace describe tenant acme
  kubectl -n $samples_namespace get secret acme-db -o jsonpath='{.data.uri}' | base64 -d; echo
  kubectl -n $samples_namespace patch mi acme-expenses --type merge -p '{"spec":{"version":"1.0.0"}}'   # roll back
  kubectl -n $samples_namespace delete mi globex-digital-card                                          # uninstall
  psql "\$LANDLORD_DATABASE_URL" -c 'table tenants'                                                    # the landlord mirror
  $rel up        # after a change: rebuild, restart the operator, re-apply the samples
  $rel down      # stop everything ($rel clean also deletes the state)
TEXT
}

# ------------------------------------------------------------------------------------- GitOps health readers

# Builds hack/gitops (landlord-health: kstatus from sigs.k8s.io/cli-utils and Argo CD v2.14's util/lua) from the
# Go module proxy once and caches it outside the work tree, keyed by the hash of its go.mod, go.sum and source,
# like kube-apiserver. Prints the path of the binary on stdout.
gitops_health_binary() {
  local src=$root/hack/gitops key bin start
  key=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)
  bin=$cache_dir/landlord-health-$key/landlord-health
  if [[ ! -x $bin ]]; then
    command -v go >/dev/null || die "Go is needed to build hack/gitops"
    log "building landlord-health from hack/gitops (first time only, a few minutes)"
    start=$(date +%s)
    mkdir -p "$(dirname "$bin")"
    # -mod=readonly: the committed go.sum is the pin; a build never rewrites it.
    (cd "$src" && go build -mod=readonly -trimpath -ldflags '-s -w' -o "$bin.tmp" .) >&2 \
      || die "go build in hack/gitops failed"
    mv "$bin.tmp" "$bin"
    log "landlord-health built in $(( $(date +%s) - start ))s: $bin"
  fi
  echo "$bin"
}

# ---------------------------------------------------------------------------------------------------- helm

# The helm of hack/helm/go.mod, built from the Go module proxy once and cached (scripts/helm-build); prints its path.
helm_binary() { "$root/scripts/helm-build" || die "helm could not be built (scripts/helm-build)"; }
