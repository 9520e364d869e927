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
# Ports come from free_port unless the user fixed them (PG_PORT, PGMEMO_PORT, BOUNCER_PORT).
#
# Sketch for pgpool-II with its query cache (not enabled; left for later work):
#   target_pgpool_up() { write pgpool.conf (backend_clustering_mode='raw', one backend =
#       127.0.0.1:$PG_PORT, memory_cache_enabled=on, memqcache_method='shmem',
#       num_init_children >= max clients, listen 127.0.0.1:$port, sockets/pid under $WORK);
#       start_daemon pgpool pgpool LOG "${RUNAS[@]}" pgpool -n -f CONF -F PCP -a HBA;
#       TG_PID[pgpool]=$DAEMON_PID  (the parent: its children's CPU is included) ... }
#   target_pgpool_down() { stop_pid pgpool "${TG_PID[pgpool]:-}" INT; }

declare -A TG_PORT TG_DB TG_PID TG_MODES TG_DESC TG_CMD

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
    psql_pg -U postgres -d postgres -q -c "CREATE ROLE $BENCH_USER LOGIN" -c "CREATE DATABASE $BENCH_DB OWNER $BENCH_USER"
    PGBENCH_INIT_CMD="$PGBENCH -i -s $SCALE -q -h 127.0.0.1 -p $PG_PORT -U $BENCH_USER $BENCH_DB"
    log "$PGBENCH_INIT_CMD"
    $PGBENCH_INIT_CMD >"$LOGS/pgbench-init.log" 2>&1 || { cat "$LOGS/pgbench-init.log" >&2; die "pgbench -i failed"; }
    psql_pg -U postgres -d "$BENCH_DB" -q -c "VACUUM ANALYZE"
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
    TG_PORT[direct]=$PG_PORT
    TG_DB[direct]=$BENCH_DB
    TG_PID[direct]=
    TG_MODES[direct]="simple extended prepared"
    TG_DESC[direct]="PostgreSQL itself, 127.0.0.1:$PG_PORT"
    TG_CMD[direct]="postgres (pg_ctl start), settings: $PG_SETTINGS"
}
target_direct_down() { :; }

# ---------------------------------------------------------------------------
# pgmemo: built from this repository

pgmemo_build() {
    if [ -n "${PGMEMO_BIN:-}" ]; then
        [ -x "$PGMEMO_BIN" ] || die "PGMEMO_BIN=$PGMEMO_BIN is not executable"
        PGMEMO_BUILD="given: $PGMEMO_BIN"
        return 0
    fi
    PGMEMO_BIN=$WORK/pgmemo
    PGMEMO_BUILD="cd $REPO && go build -o $PGMEMO_BIN ./cmd/pgmemo"
    log "$PGMEMO_BUILD"
    (cd "$REPO" && go build -o "$PGMEMO_BIN" ./cmd/pgmemo) >"$LOGS/go-build.log" 2>&1 \
        || { cat "$LOGS/go-build.log" >&2; die "go build ./cmd/pgmemo failed"; }
}

# pgmemo_up NAME [ENV=VALUE...]: start pgmemo as target NAME, with extra
# environment (e.g. GOMAXPROCS=1 for the pgmemo-p1 variant). It relays only
# (--invalidation off) unless PGMEMO_ARGS says otherwise (the last flag wins).
pgmemo_up() {
    local name=$1; shift
    local port
    port=$(free_port "$PG_PORT" "${BOUNCER_PORT:-}" "${TG_PORT[pgmemo]:-}" "${TG_PORT[pgmemo-p1]:-}")
    local cmd=(env "$@" "$PGMEMO_BIN" --listen "127.0.0.1:$port"
        --upstream "postgres://$BENCH_USER@127.0.0.1:$PG_PORT/$BENCH_DB?sslmode=disable"
        --log-level "${PGMEMO_LOG_LEVEL:-warn}" --invalidation off ${PGMEMO_ARGS:-})
    start_daemon "$name" "$(comm_of "$PGMEMO_BIN")" "$LOGS/$name.log" "${RUNAS[@]}" "${cmd[@]}"
    TG_PID[$name]=$DAEMON_PID
    wait_sql "$port" "$BENCH_DB" 30 || { tail -20 "$LOGS/$name.log" >&2; die "$name does not answer on 127.0.0.1:$port"; }
    TG_PORT[$name]=$port
    TG_DB[$name]=$BENCH_DB
    TG_MODES[$name]="simple extended prepared"
    TG_DESC[$name]="pgmemo ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(pgmemo_dirty)) $*, 127.0.0.1:$port"
    TG_CMD[$name]=$(printf '%q ' "${cmd[@]}")
    log "$name up on 127.0.0.1:$port"
}
target_pgmemo_up() { pgmemo_up pgmemo; PGMEMO_PORT=${TG_PORT[pgmemo]}; }
# pgmemo-p1: the same binary limited to one scheduler thread (GOMAXPROCS=1).
target_pgmemo-p1_up() { pgmemo_up pgmemo-p1 GOMAXPROCS=1; }
target_pgmemo-p1_down() { stop_pid pgmemo-p1 "${TG_PID[pgmemo-p1]:-}" TERM 35; TG_PID[pgmemo-p1]=; }
target_pgmemo_down() { stop_pid pgmemo "${TG_PID[pgmemo]:-}" TERM 35; TG_PID[pgmemo]=; }

pgmemo_dirty() {
    [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- . ':!bench' 2>/dev/null)" ] && echo " + uncommitted changes"
}

# ---------------------------------------------------------------------------
# pgbouncer: PgBouncer in session mode

target_pgbouncer_up() {
    local port=${BOUNCER_PORT:-$(free_port "$PG_PORT" "${PGMEMO_PORT:-}")} d=$WORK/pgbouncer
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
    TG_PORT[pgbouncer]=$port
    TG_DB[pgbouncer]=$BENCH_DB
    TG_MODES[pgbouncer]="simple extended prepared"   # session mode: named prepared statements work
    TG_DESC[pgbouncer]="$("$PGBOUNCER" --version 2>&1 | head -1), pool_mode=session pool_size=$BOUNCER_POOL_SIZE, 127.0.0.1:$port"
    TG_CMD[pgbouncer]="$PGBOUNCER $d/pgbouncer.ini
$(grep -v '^\s*$' "$d/pgbouncer.ini" | sed 's/^/#   /')"
    log "PgBouncer up on 127.0.0.1:$port"
}
target_pgbouncer_down() { stop_pid pgbouncer "${TG_PID[pgbouncer]:-}" TERM 15; TG_PID[pgbouncer]=; }
