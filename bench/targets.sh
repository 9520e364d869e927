# bench/targets.sh - the throwaway PostgreSQL cluster and the targets pgbench is pointed at
# (sourced by pgbench-compare.sh).
#
# A target NAME is two functions plus a few table entries:
#
#   target_NAME_up     start it (PostgreSQL is already up and loaded) and fill in
#                        TG_PORT[NAME]   port on 127.0.0.1 that pgbench connects to
#                        TG_DB[NAME]     database name pgbench asks for
#                        TG_PID[NAME]    pid of the proxy process whose CPU is reported as
#                                        "proxy CPU" (its live and reaped children count too);
#                                        empty for direct
#                        TG_MODES[NAME]  pgbench -M modes it supports (space separated)
#                        TG_DESC[NAME]   one line for the report
#                        TG_CMD[NAME]    exact command line / config for the report
#   target_NAME_down   stop it; called from the exit trap, so it must cope with a target
#                      that was never started and must be idempotent.
#
# Then add NAME to TARGETS (the default list is in pgbench-compare.sh; "direct" always runs
# first in every repetition pass because every ratio is target tps / direct tps of that pass).
# Ports come from free_port unless the user fixed them (PG_PORT, PGMEMO_PORT,
# PGMEMO_CACHE_PORT, BOUNCER_PORT, PGPOOL_PORT).
#
# Optional: target_NAME_stats prints "HITS MISSES UNCACHED" (cumulative cache counters of a
# caching target, read through its own port); pgbench-compare.sh reads it before and after
# every run and records the deltas (hit % = hits / (hits + misses)).  Caching targets here:
# pgmemo-cache (SHOW pgmemo.stats) and pgpool (SHOW POOL_CACHE).

declare -A TG_PORT TG_HOST TG_DB TG_PID TG_MODES TG_DESC TG_CMD

# target_set NAME PORT DESC CMD: record a started target (pgbench connects to $BENCH_DB on
# 127.0.0.1:PORT, in every -M mode).
target_set() {
    TG_PORT[$1]=$2
    TG_HOST[$1]=127.0.0.1 # pgbench's -h; a Unix socket target sets its directory after this
    TG_DB[$1]=$BENCH_DB
    TG_MODES[$1]="simple extended prepared"
    TG_DESC[$1]=$3
    TG_CMD[$1]=$4
}

# taken_ports: every port chosen so far (not all bound yet), for free_port to avoid
taken_ports() { echo "${PG_PORT:-} ${PGMEMO_PORT:-} ${PGMEMO_CACHE_PORT:-} ${BOUNCER_PORT:-} ${PGPOOL_PORT:-} ${PGPOOL_PCP_PORT:-} ${TG_PORT[*]}"; }

# ---------------------------------------------------------------------------
# The upstream PostgreSQL cluster (not a target by itself: "direct" is a target on top of it)

PG_PID=
pg_up() {
    PGDATA_DIR=$WORK/pgdata
    PG_SOCK=$WORK/pgsock
    mkdir -p "$PGDATA_DIR" "$PG_SOCK"
    chmod 700 "$PGDATA_DIR"
    own_path "$PGDATA_DIR" "$PG_SOCK"
    PG_PORT=${PG_PORT:-$(free_port)}
    INITDB_CMD="$PGBIN/initdb -D $PGDATA_DIR -U postgres -E UTF8 --no-locale --auth=trust"
    log "initdb into $PGDATA_DIR"
    "${RUNAS[@]}" $INITDB_CMD >"$LOGS/initdb.log" 2>&1 || { cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# ---- bench/pgbench-compare.sh ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 256MB
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
# Benchmark-only durability settings: a crash may corrupt this throwaway cluster.
# (The measured workloads are read-only, so they do not change the numbers much.)
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
${PG_EXTRA_CONF:-}
EOF
    cat >"$PGDATA_DIR/pg_hba.conf" <<EOF
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
    own_path "$PGDATA_DIR/pg_hba.conf"
    # pg_ctl waits until the server accepts connections; the postmaster gets its own session
    PG_CTL_CMD="$PGBIN/pg_ctl -D $PGDATA_DIR -l $LOGS/postgres.log -w -t 60 start"
    "${RUNAS[@]}" setsid $PG_CTL_CMD >/dev/null \
        || { tail -30 "$LOGS/postgres.log" >&2; die "PostgreSQL did not start"; }
    PG_PID=$(head -1 "$PGDATA_DIR/postmaster.pid")
    echo "$PG_PID" >"$PIDS_DIR/postgres"
    log "PostgreSQL up on 127.0.0.1:$PG_PORT (postmaster pid $PG_PID)"
    PG_SETTINGS=$(psql_pg -U postgres -d postgres -Atc "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers','max_connections','wal_level','fsync','synchronous_commit','full_page_writes','jit','max_parallel_workers_per_gather')")
}

psql_pg() { "$PSQL" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" "$@"; }

pg_load() {
    # REPLICATION lets pgmemo-wal follow the database's logical replication stream.
    psql_pg -U postgres -d postgres -q -c "CREATE ROLE $BENCH_USER LOGIN REPLICATION" -c "CREATE DATABASE $BENCH_DB OWNER $BENCH_USER"
    PGBENCH_INIT_CMD="$PGBENCH -i -s $SCALE -q -h 127.0.0.1 -p $PG_PORT -U $BENCH_USER $BENCH_DB"
    log "$PGBENCH_INIT_CMD"
    $PGBENCH_INIT_CMD >"$LOGS/pgbench-init.log" 2>&1 || { cat "$LOGS/pgbench-init.log" >&2; die "pgbench -i failed"; }
    psql_pg -U postgres -d "$BENCH_DB" -q -c "VACUUM ANALYZE"
    # For pgmemo-wal: pgbench_history has no primary key, so pgmemo will not create a FOR ALL
    # TABLES publication itself (UPDATE/DELETE on it would fail); pgbench only INSERTs there.
    psql_pg -U postgres -d "$BENCH_DB" -q -c "CREATE PUBLICATION pgmemo FOR ALL TABLES"
    # Prewarm: pg_prewarm (postgresql-contrib) if available, else a full scan of each table.
    if psql_pg -U postgres -d "$BENCH_DB" -q -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" 2>/dev/null; then
        PREWARM="pg_prewarm of pgbench_{accounts,branches,tellers} and their primary keys"
        psql_pg -U postgres -d "$BENCH_DB" -Atc "SELECT sum(pg_prewarm(c)) FROM unnest(ARRAY['pgbench_accounts','pgbench_accounts_pkey','pgbench_branches','pgbench_branches_pkey','pgbench_tellers','pgbench_tellers_pkey']::regclass[]) c" >/dev/null
    else
        PREWARM="full scans (pg_prewarm not available)"
        psql_pg -U postgres -d "$BENCH_DB" -Atc "SELECT count(*) FROM pgbench_accounts" -c "SELECT count(*) FROM pgbench_branches" -c "SELECT count(*) FROM pgbench_tellers" >/dev/null
    fi
    DATA_DESC=$(psql_pg -U "$BENCH_USER" -d "$BENCH_DB" -Atc "SELECT count(*) || ' accounts, ' || pg_size_pretty(pg_total_relation_size('pgbench_accounts')) FROM pgbench_accounts")
    log "data ready: scale $SCALE, $DATA_DESC, prewarmed ($PREWARM)"
}

pg_down() {
    [ -n "$PG_PID" ] || return 0
    if kill -0 "$PG_PID" 2>/dev/null; then
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || stop_pid postgres "$PG_PID" QUIT 10
        log "stopped PostgreSQL (pid $PG_PID)"
    fi
    PG_PID=
}

# ---------------------------------------------------------------------------
# direct: pgbench straight to PostgreSQL

target_direct_up() {
    TG_PID[direct]=
    target_set direct "$PG_PORT" "PostgreSQL itself, 127.0.0.1:$PG_PORT" "postgres (pg_ctl start), settings: $PG_SETTINGS"
}
target_direct_down() { :; }
# direct-unix: the same server through its Unix socket (the measure for pgmemo-wal-unix).
target_direct-unix_up() {
    TG_PID[direct-unix]=
    target_set direct-unix "$PG_PORT" "PostgreSQL itself, Unix socket $PG_SOCK/.s.PGSQL.$PG_PORT" "postgres (pg_ctl start), settings: $PG_SETTINGS"
    TG_HOST[direct-unix]=$PG_SOCK
}
target_direct-unix_down() { :; }

# ---------------------------------------------------------------------------
# pgmemo: built from this repository

pgmemo_build() {
    if [ -n "${PGMEMO_BIN:-}" ]; then
        [ -x "$PGMEMO_BIN" ] || die "PGMEMO_BIN=$PGMEMO_BIN is not executable"
        PGMEMO_BUILD="given: $PGMEMO_BIN"
        PGMEMO_REV="binary given (PGMEMO_BIN)"
        pgmemo_http_flag
        return 0
    fi
    PGMEMO_BIN=$WORK/pgmemo
    PGMEMO_BUILD="cd $REPO && go build -o $PGMEMO_BIN ./cmd/pgmemo"
    # the source state the binary is built from (HEAD may move while a long run goes on)
    PGMEMO_REV="git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(pgmemo_dirty)"
    log "$PGMEMO_BUILD  ($PGMEMO_REV)"
    (cd "$REPO" && go build -o "$PGMEMO_BIN" ./cmd/pgmemo) >"$LOGS/go-build.log" 2>&1 \
        || { cat "$LOGS/go-build.log" >&2; die "go build ./cmd/pgmemo failed"; }
    pgmemo_http_flag
}

# pgmemo_http_flag: sets PGMEMO_HTTP_FLAG to "--http-listen off" when the binary has that
# flag (its HTTP endpoint for /metrics etc. is on 127.0.0.1:9432 by default; the benchmark
# does not use it, and several pgmemo targets would compete for that port).
pgmemo_http_flag() {
    PGMEMO_HTTP_FLAG=
    if "$PGMEMO_BIN" help 2>&1 | grep -q -- '-http-listen'; then PGMEMO_HTTP_FLAG="--http-listen off"; fi
}

# pgmemo_up NAME FLAGS [ENV=VALUE...]: start pgmemo as target NAME with FLAGS (e.g.
# "--invalidation off") and extra environment (ENV=VALUE, e.g. GOMAXPROCS=2).
# PGMEMO_ARGS is appended to every pgmemo target's flags (the last flag wins).
pgmemo_up() {
    local name=$1 flags=$2; shift 2
    local port=
    case $name in pgmemo) port=${PGMEMO_PORT:-} ;; pgmemo-cache) port=${PGMEMO_CACHE_PORT:-} ;; esac
    # shellcheck disable=SC2046
    [ -n "$port" ] || port=$(free_port $(taken_ports))
    # shellcheck disable=SC2206
    local argv=(env "$@" "$PGMEMO_BIN" --listen "127.0.0.1:$port"
        --upstream "postgres://$BENCH_USER@127.0.0.1:$PG_PORT/$BENCH_DB?sslmode=disable"
        --log-level "${PGMEMO_LOG_LEVEL:-warn}" ${PGMEMO_HTTP_FLAG:-} $flags ${PGMEMO_ARGS:-})
    start_daemon "$name" "$(comm_of "$PGMEMO_BIN")" "$LOGS/$name.log" "${RUNAS[@]}" "${argv[@]}"
    TG_PID[$name]=$DAEMON_PID
    wait_sql "$port" "$BENCH_DB" 30 || { tail -20 "$LOGS/$name.log" >&2; die "$name does not answer on 127.0.0.1:$port"; }
    target_set "$name" "$port" "pgmemo ($PGMEMO_REV) $flags${PGMEMO_ARGS:+ $PGMEMO_ARGS}${*:+ ($*)}, 127.0.0.1:$port" \
        "$(printf '%q ' "${argv[@]}")"
    log "$name up on 127.0.0.1:$port"
}
# pgmemo: relay only (no result cache)
target_pgmemo_up() { pgmemo_up pgmemo "--invalidation off"; PGMEMO_PORT=${TG_PORT[pgmemo]}; }
target_pgmemo_down() { stop_pid pgmemo "${TG_PID[pgmemo]:-}" TERM 35; TG_PID[pgmemo]=; }
# pgmemo-t2: the relay with two scheduler threads (--threads 2; the default, auto, is one
# on a 2-core machine).
target_pgmemo-t2_up() { pgmemo_up pgmemo-t2 "--invalidation off --threads 2"; }
target_pgmemo-t2_down() { stop_pid pgmemo-t2 "${TG_PID[pgmemo-t2]:-}" TERM 35; TG_PID[pgmemo-t2]=; }

# relayfloor, relayfloor-go (not in the default TARGETS): bench/relayfloor, a byte-copying
# TCP relay in Go, on one OS thread with an epoll loop (relayfloor) or with two goroutines
# per client (relayfloor-go). Not pgmemo: a measuring stick for what an event-loop
# relay costs on this machine, next to pgmemo's relay and PgBouncer.
target_relayfloor_up() { relayfloor_up relayfloor epoll; }
target_relayfloor_down() { stop_pid relayfloor "${TG_PID[relayfloor]:-}" TERM 10; TG_PID[relayfloor]=; }
# relayfloor-go: the same byte copy with two goroutines per client (pgmemo's shape).
target_relayfloor-go_up() { relayfloor_up relayfloor-go goroutines; }
target_relayfloor-go_down() { stop_pid relayfloor-go "${TG_PID[relayfloor-go]:-}" TERM 10; TG_PID[relayfloor-go]=; }

# relayfloor_up NAME MODE: start bench/relayfloor -mode MODE as target NAME.
relayfloor_up() {
    local name=$1 mode=$2 bin=$WORK/$1/relayfloor port
    mkdir -p "$WORK/$name"
    (cd "$REPO" && go build -o "$bin" ./bench/relayfloor) >"$LOGS/go-build-$name.log" 2>&1 \
        || { cat "$LOGS/go-build-$name.log" >&2; die "go build ./bench/relayfloor failed"; }
    # shellcheck disable=SC2046
    port=$(free_port $(taken_ports))
    local argv=("$bin" -mode "$mode" -listen "127.0.0.1:$port" -upstream "127.0.0.1:$PG_PORT")
    start_daemon "$name" relayfloor "$LOGS/$name.log" "${RUNAS[@]}" "${argv[@]}"
    TG_PID[$name]=$DAEMON_PID
    wait_sql "$port" "$BENCH_DB" 30 || { tail -20 "$LOGS/$name.log" >&2; die "$name does not answer on 127.0.0.1:$port"; }
    target_set "$name" "$port" "bench/relayfloor -mode $mode (byte-copying relay in Go; not pgmemo), 127.0.0.1:$port" \
        "cd $REPO && go build -o $bin ./bench/relayfloor; $(printf '%q ' "${argv[@]}")"
    log "$name up on 127.0.0.1:$port"
}
# pgmemo-cache: the result cache on, kept fresh by the writes that go through pgmemo
# (--invalidation statement; no replication connection).  Settings:
#   PGMEMO_CACHE_MAX_BYTES=256MiB  PGMEMO_CACHE_TTL= (none)  PGMEMO_TX_POLICY=until-write
#   PGMEMO_CACHE_ARGS="..."        further flags for this target only
target_pgmemo-cache_up() {
    local flags="--invalidation statement --cache-max-bytes ${PGMEMO_CACHE_MAX_BYTES:-256MiB} --tx-policy ${PGMEMO_TX_POLICY:-until-write}"
    [ -n "${PGMEMO_CACHE_TTL:-}" ] && flags="$flags --cache-ttl $PGMEMO_CACHE_TTL"
    [ -n "${PGMEMO_CACHE_ARGS:-}" ] && flags="$flags $PGMEMO_CACHE_ARGS"
    pgmemo_up pgmemo-cache "$flags"
    cache_check pgmemo-cache
}
target_pgmemo-cache_down() { stop_pid pgmemo-cache "${TG_PID[pgmemo-cache]:-}" TERM 35; TG_PID[pgmemo-cache]=; }

# pgmemo-wal: pgmemo as it runs by default: the result cache, invalidated by every committed
# write through logical replication (--invalidation wal; the publication is made by pg_load).
target_pgmemo-wal_up() { pgmemo_wal_up pgmemo-wal; }
target_pgmemo-wal_down() { stop_pid pgmemo-wal "${TG_PID[pgmemo-wal]:-}" TERM 35; TG_PID[pgmemo-wal]=; }
target_pgmemo-wal_stats() { pgmemo_stats pgmemo-wal; }
# pgmemo-wal-t2: the same with two scheduler threads (--threads 2).
target_pgmemo-wal-t2_up() { pgmemo_wal_up pgmemo-wal-t2 "--threads 2"; }
target_pgmemo-wal-t2_down() { stop_pid pgmemo-wal-t2 "${TG_PID[pgmemo-wal-t2]:-}" TERM 35; TG_PID[pgmemo-wal-t2]=; }
target_pgmemo-wal-t2_stats() { pgmemo_stats pgmemo-wal-t2; }
# pgmemo-wal-unix: pgmemo-wal with pgbench connecting on its Unix socket (--unix-socket-dir;
# pgmemo still reaches PostgreSQL over TCP). Compare it with direct-unix.
target_pgmemo-wal-unix_up() {
    local dir=$WORK/pgmemo-wal-unix
    mkdir -p "$dir"
    [ ${#RUNAS[@]} -gt 0 ] && chown "$RUN_AS" "$dir"
    pgmemo_wal_up pgmemo-wal-unix "--unix-socket-dir $dir"
    TG_HOST[pgmemo-wal-unix]=$dir
}
target_pgmemo-wal-unix_down() { stop_pid pgmemo-wal-unix "${TG_PID[pgmemo-wal-unix]:-}" TERM 35; TG_PID[pgmemo-wal-unix]=; }
target_pgmemo-wal-unix_stats() { pgmemo_stats pgmemo-wal-unix; }
# pgmemo_wal_up NAME [FLAGS]: start pgmemo in WAL mode as target NAME, with further FLAGS.
pgmemo_wal_up() {
    local name=$1 flags="--invalidation wal --cache-max-bytes ${PGMEMO_CACHE_MAX_BYTES:-256MiB} --tx-policy ${PGMEMO_TX_POLICY:-until-write}${2:+ $2}"
    [ -n "${PGMEMO_CACHE_ARGS:-}" ] && flags="$flags $PGMEMO_CACHE_ARGS"
    pgmemo_up "$name" "$flags"
    # Hits start once the stream is current.
    local i
    for i in $(seq 1 50); do
        "$PSQL" -X -h 127.0.0.1 -p "${TG_PORT[$name]}" -U "$BENCH_USER" -d "$BENCH_DB" -AtF ' ' -c 'SHOW pgmemo.stats' 2>/dev/null \
            | grep -q '^replication_serving true' && break
        sleep 0.2
    done
    cache_check "$name"
}
# pgmemo_stats NAME: "HITS MISSES UNCACHED" from SHOW pgmemo.stats (name/value rows: hits,
# misses, ..., not_cacheable, bypassed, ...) of pgmemo target NAME.
pgmemo_stats() {
    "$PSQL" -X -h 127.0.0.1 -p "${TG_PORT[$1]}" -U "$BENCH_USER" -d "$BENCH_DB" -AtF ' ' -c 'SHOW pgmemo.stats' 2>/dev/null \
        | awk '$1 == "hits" {h = $2} $1 == "misses" {m = $2} $1 == "not_cacheable" || $1 == "bypassed" {u += $2}
               END { if (h != "" && m != "") print h, m, u + 0 }'
}
target_pgmemo-cache_stats() { pgmemo_stats pgmemo-cache; }

# cache_check NAME: the same SELECT three times through NAME must give >= 2 cache hits
# (from target_NAME_stats).  A failed check is logged and noted in the report, not fatal.
cache_check() {
    local name=$1 h0 h1 i q
    q="SELECT abalance FROM pgbench_accounts WHERE aid = 424242 /* $name cache check $(date +%s%N) */"
    read -r h0 _ _ < <("target_${name}_stats")
    for i in 1 2 3; do
        "$PSQL" -X -q -h 127.0.0.1 -p "${TG_PORT[$name]}" -U "$BENCH_USER" -d "$BENCH_DB" -Atc "$q" >/dev/null 2>&1 \
            || log "WARNING: $name: query $i of the cache check failed"
    done
    read -r h1 _ _ < <("target_${name}_stats")
    if [ -n "${h0:-}" ] && [ -n "${h1:-}" ] && [ "$((h1 - h0))" -ge 2 ]; then
        log "$name cache check OK (hits $h0 -> $h1 over 3 identical SELECTs)"
    else
        log "WARNING: $name cache check FAILED (hits '${h0:-?}' -> '${h1:-?}' over 3 identical SELECTs)"
        TG_DESC[$name]="${TG_DESC[$name]} (WARNING: start-up cache check failed: hits '${h0:-?}' -> '${h1:-?}')"
    fi
}

pgmemo_dirty() {
    [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- . ':!bench' 2>/dev/null)" ] && echo " + uncommitted changes"
}

# ---------------------------------------------------------------------------
# pgbouncer: PgBouncer in session mode

target_pgbouncer_up() {
    # shellcheck disable=SC2046
    local port=${BOUNCER_PORT:-$(free_port $(taken_ports))} d=$WORK/pgbouncer
    BOUNCER_PORT=$port
    mkdir -p "$d"
    cat >"$d/userlist.txt" <<EOF
"$BENCH_USER" ""
EOF
    cat >"$d/pgbouncer.ini" <<EOF
[databases]
$BENCH_DB = host=127.0.0.1 port=$PG_PORT dbname=$BENCH_DB pool_mode=session pool_size=$BOUNCER_POOL_SIZE

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
logfile = $LOGS/pgbouncer.log
auth_type = trust
auth_file = $d/userlist.txt
pool_mode = session
default_pool_size = $BOUNCER_POOL_SIZE
max_client_conn = 500
max_db_connections = 0
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits,options
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
EOF
    touch "$LOGS/pgbouncer.log"
    own_path "$d" "$d"/* "$LOGS/pgbouncer.log"
    start_daemon pgbouncer "$(comm_of "$PGBOUNCER")" "$LOGS/pgbouncer.stderr" "${RUNAS[@]}" "$PGBOUNCER" "$d/pgbouncer.ini"
    TG_PID[pgbouncer]=$DAEMON_PID
    wait_sql "$port" "$BENCH_DB" 30 || { tail -20 "$LOGS/pgbouncer.log" "$LOGS/pgbouncer.stderr" >&2; die "PgBouncer does not answer on 127.0.0.1:$port"; }
    # session mode: named prepared statements work, so every -M mode does
    target_set pgbouncer "$port" "$("$PGBOUNCER" --version 2>&1 | head -1), pool_mode=session pool_size=$BOUNCER_POOL_SIZE, 127.0.0.1:$port" \
        "$PGBOUNCER $d/pgbouncer.ini
$(grep -v '^\s*$' "$d/pgbouncer.ini" | sed 's/^/#   /')"
    log "PgBouncer up on 127.0.0.1:$port"
}
target_pgbouncer_down() { stop_pid pgbouncer "${TG_PID[pgbouncer]:-}" TERM 15; TG_PID[pgbouncer]=; }

# ---------------------------------------------------------------------------
# pgpool: pgpool-II (Debian pgpool2) with its in-memory query cache in shared memory.
# Raw mode, one backend, no load balancing, no health checks; num_init_children preforked
# children (must be >= max clients, else clients queue).  Settings:
#   PGPOOL_PORT (default: a free one)  PGPOOL_CHILDREN (default: max(40, max clients + 8))
#   PGPOOL_CACHE_SIZE=256MB  (memqcache_total_size)   PGPOOL=/path/to/pgpool
# The "proxy CPU" of pgpool is its main process plus its children (live and reaped).

target_pgpool_up() {
    local d=$WORK/pgpool port pcp children
    # shellcheck disable=SC2046
    port=${PGPOOL_PORT:-$(free_port $(taken_ports))}
    PGPOOL_PORT=$port
    # shellcheck disable=SC2046
    pcp=${PGPOOL_PCP_PORT:-$(free_port $(taken_ports))}
    PGPOOL_PCP_PORT=$pcp
    children=$(pgpool_children)
    mkdir -p "$d/oiddir"
    cat >"$d/pgpool.conf" <<EOF
# generated by bench/pgbench-compare.sh for $("$PGPOOL" --version 2>&1 | head -1)
backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = $port
socket_dir = '$d'
pcp_listen_addresses = ''
pcp_port = $pcp
pcp_socket_dir = '$d'
wd_ipc_socket_dir = '$d'
pid_file_name = '$d/pgpool.pid'
logdir = '$d'
use_watchdog = off

backend_hostname0 = '127.0.0.1'
backend_port0 = $PG_PORT
backend_weight0 = 1
backend_data_directory0 = '$PGDATA_DIR'
backend_flag0 = 'DISALLOW_TO_FAILOVER'
backend_application_name0 = 'server0'

enable_pool_hba = off
pool_passwd = ''
allow_clear_text_frontend_auth = off

num_init_children = $children
max_pool = 4
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
connection_cache = on
reset_query_list = 'ABORT; DISCARD ALL'

load_balance_mode = off
health_check_period = 0
sr_check_period = 0
failover_on_backend_error = off
failover_command = ''

log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
log_connections = off
log_hostname = off
log_statement = off
log_per_node_statement = off

memory_cache_enabled = on
memqcache_method = 'shmem'
memqcache_total_size = ${PGPOOL_CACHE_SIZE:-256MB}
memqcache_max_num_cache = 1000000
memqcache_expire = 0
memqcache_auto_cache_invalidation = on
memqcache_maxcache = 400kB
memqcache_cache_block_size = 1MB
memqcache_oiddir = '$d/oiddir'
EOF
    cat >"$d/pool_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
    : >"$d/pcp.conf"
    own_path "$d" "$d/oiddir" "$d/pgpool.conf" "$d/pool_hba.conf" "$d/pcp.conf"
    # -n: stay in the foreground (its pid is ours); -D: ignore a saved backend status
    start_daemon pgpool "$(comm_of "$PGPOOL")" "$LOGS/pgpool.log" "${RUNAS[@]}" \
        "$PGPOOL" -n -D -f "$d/pgpool.conf" -F "$d/pcp.conf" -a "$d/pool_hba.conf"
    TG_PID[pgpool]=$DAEMON_PID
    wait_sql "$port" "$BENCH_DB" 30 || { tail -20 "$LOGS/pgpool.log" >&2; die "pgpool does not answer on 127.0.0.1:$port"; }
    target_set pgpool "$port" "$("$PGPOOL" --version 2>&1 | head -1): raw mode, 1 backend, num_init_children=$children, memory_cache_enabled=on, memqcache_method=shmem (${PGPOOL_CACHE_SIZE:-256MB}), 127.0.0.1:$port" \
        "$PGPOOL -n -D -f $d/pgpool.conf -F $d/pcp.conf -a $d/pool_hba.conf
$(grep -v -e '^\s*$' -e '^#' "$d/pgpool.conf" | sed 's/^/#   /')"
    log "pgpool up on 127.0.0.1:$port"
    cache_check pgpool
}
# SIGINT = pgpool's fast shutdown (it stops its children)
target_pgpool_down() { stop_pid pgpool "${TG_PID[pgpool]:-}" INT 20; TG_PID[pgpool]=; }
# SHOW POOL_CACHE: num_cache_hits | num_selects (misses: sent to PostgreSQL) | ...
# (in -M extended/prepared pgpool counts two lookups per query; the ratio is still right)
target_pgpool_stats() {
    "$PSQL" -X -h 127.0.0.1 -p "${TG_PORT[pgpool]}" -U "$BENCH_USER" -d "$BENCH_DB" -Atc 'SHOW POOL_CACHE' 2>/dev/null \
        | awk -F'|' 'NR == 1 && $1 ~ /^[0-9]+$/ { print $1, $2, 0 }'
}
# pgpool_children: num_init_children (PGPOOL_CHILDREN, else max(40, max clients + 8))
pgpool_children() {
    local c max=0
    for c in $CLIENTS $WARMUP_CLIENTS; do [ "$c" -gt "$max" ] && max=$c; done
    echo "${PGPOOL_CHILDREN:-$(( max + 8 > 40 ? max + 8 : 40 ))}"
}
