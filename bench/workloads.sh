# bench/workloads.sh - what pgbench runs (sourced by pgbench-compare.sh).
#
# A workload NAME is a few table entries:
#   WL_ARGS[NAME]      the pgbench script arguments (-S, -b ..., or -f FILE)
#   WL_DESC[NAME]      one line for the report
#   WL_MODES[NAME]     pgbench -M modes it makes sense in (space separated; MODES= filters further)
#   WL_DURATION[NAME]  seconds per measured run (DURATION_NAME= or DURATION= override it)
#   WL_FILL[NAME]      optional: a function that writes to file $1 a pgbench script touching
#                      every key of the workload once (the same statement text as the workload,
#                      so a result cache stores exactly the entries the runs read).  It runs once,
#                      -c 1 -t 1, per (mode, target) before that mode's first measured cell.
#   WL_WARMUP_S[NAME]  seconds of unrecorded warm-up per (mode, target) after the fill, at
#                      $WARMUP_CLIENTS clients; 0 = none (WARMUP_S= overrides it for all)
# and optionally a function  wl_NAME_before_run TARGET  that runs before every run (e.g. to
# invalidate a cache through the target so that a run starts cold).  Its cost is outside
# the measurement.
# Select workloads with WORKLOADS="select hot heavy" (the default).

declare -A WL_ARGS WL_DESC WL_MODES WL_WARMUP_S WL_DURATION WL_FILL

HOT_ROWS=${HOT_ROWS:-1000}

# pgbench's builtin select-only script.  Cold for a cache: 1M keys (scale 10), and before each
# run a no-op UPDATE of pgbench_accounts goes through the target, which makes a caching proxy
# (pgmemo-cache, pgpool) drop what it cached of that table (SELECT_COLD=0: no UPDATE).
WL_ARGS[select]="-S"
WL_DESC[select]="pgbench -S: SELECT abalance FROM pgbench_accounts WHERE aid = :aid, aid uniform over all $((SCALE * 100000)) rows$( [ "${SELECT_COLD:-1}" = 1 ] && echo "; before each run a no-op UPDATE pgbench_accounts ... WHERE aid = 0 through the target (empties a cache)")"
WL_MODES[select]="simple extended prepared"
WL_DURATION[select]=15
WL_WARMUP_S[select]=0
wl_select_before_run() {
    [ "${SELECT_COLD:-1}" = 1 ] || return 0
    "$PSQL" -X -q -h 127.0.0.1 -p "${TG_PORT[$1]}" -U "$BENCH_USER" -d "${TG_DB[$1]}" \
        -c "UPDATE pgbench_accounts SET abalance = abalance WHERE aid = 0" >/dev/null 2>&1 \
        || log "  WARNING: the no-op UPDATE through $1 failed"
}

# the same primary-key lookup over a hot set of 1,000 rows (a result cache gets ~100% hits)
WL_ARGS[hot]="-D hot_rows=$HOT_ROWS -f $BENCH_DIR/workloads/hot.sql"
WL_DESC[hot]="workloads/hot.sql: the -S query over a hot set of $HOT_ROWS rows (aid random in 1..$HOT_ROWS); before each mode a fill pass reads all $HOT_ROWS once"
WL_MODES[hot]="simple extended prepared"
WL_DURATION[hot]=10
WL_WARMUP_S[hot]=2
WL_FILL[hot]=wl_hot_fill
wl_hot_fill() {
    local i
    for ((i = 1; i <= HOT_ROWS; i++)); do
        printf '\\set aid %d\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' "$i"
    done >"$1"
}

# an expensive aggregate with $SCALE distinct results (seq scan of pgbench_accounts each time)
WL_ARGS[heavy]="-s $SCALE -f $BENCH_DIR/workloads/heavy.sql"
WL_DESC[heavy]="workloads/heavy.sql: count/sum/avg over pgbench_accounts WHERE bid = :bid ($SCALE distinct results, full scan each); before each mode a fill pass reads all $SCALE once"
WL_MODES[heavy]="simple extended prepared"
WL_DURATION[heavy]=10
WL_WARMUP_S[heavy]=2
WL_FILL[heavy]=wl_heavy_fill
wl_heavy_fill() {
    local i
    for ((i = 1; i <= SCALE; i++)); do
        printf '\\set bid %d\nSELECT count(*), sum(abalance), avg(abalance) FROM pgbench_accounts WHERE bid = :bid;\n' "$i"
    done >"$1"
}

# pgbench's default read-write script (TPC-B-like: 3 UPDATEs, 1 SELECT, 1 INSERT per
# transaction): the cost of invalidation on a write-heavy workload.
WL_ARGS[tpcb]="-b tpcb-like"
WL_DESC[tpcb]="pgbench -b tpcb-like: the default read-write script (3 UPDATEs, a SELECT and an INSERT per transaction)"
WL_MODES[tpcb]="simple extended prepared"
WL_DURATION[tpcb]=15
WL_WARMUP_S[tpcb]=0
wl_tpcb_before_run() { wal_consumers_only_for "$1"; }

# wal_consumers_only_for TARGET: before a run of a workload that writes, stop every
# pgmemo-wal* target other than TARGET and start TARGET if it is one that was stopped. A
# running pgmemo-wal has a replication slot whose walsender decodes every write made on the
# server, whichever target made it; left running, it would slow down the direct, relay and
# PgBouncer runs too (about 30 µs of PostgreSQL CPU per TPC-B transaction here), which a
# server without pgmemo does not pay. Its own runs keep that cost: it is part of pgmemo's.
wal_consumers_only_for() {
    local t
    for t in $TARGETS; do
        [[ $t == pgmemo-wal* ]] || continue
        if [ "$t" != "$1" ] && [ -n "${TG_PID[$t]:-}" ]; then
            "target_${t}_down"
        elif [ "$t" = "$1" ] && [ -z "${TG_PID[$t]:-}" ]; then
            "target_${t}_up"
        fi
    done
}
