#!/usr/bin/env bash
# bench/pgbench-compare.sh - pgbench through pgmemo (relay and result cache) vs. direct
# PostgreSQL vs. PgBouncer vs. pgpool-II's query cache, all in one run.
#
# Starts a throwaway PostgreSQL cluster (initdb in a temp dir, 127.0.0.1 only), loads
# pgbench -i -s $SCALE and prewarms it, builds pgmemo from this repository, starts the
# targets in front of it (pgmemo relay-only, pgmemo with its result cache, PgBouncer in
# session mode, pgpool-II with memory_cache_enabled), and runs pgbench for every
# (workload, mode, clients) cell with the targets interleaved: direct, pgmemo, pgmemo-cache,
# pgbouncer, pgpool, direct, ... ($REPS passes).  Records tps, latency, CPU time per
# transaction of the proxy and of PostgreSQL (from /proc) and, for the caching targets, the
# cache hit ratio of each run (SHOW pgmemo.stats / SHOW POOL_CACHE before and after), prints
# markdown tables and writes them with the raw CSV and pgbench output under
# bench/results/<timestamp>/.  Everything it started is stopped and the temp dir removed on
# exit, including Ctrl-C.
#
# Needs PostgreSQL server binaries + pgbench (Debian: postgresql, postgresql-contrib),
# pgbouncer, pgpool2 (only for the targets that use them) and Go (to build pgmemo).  Run as
# root it installs the missing Debian packages with apt-get (APT_INSTALL=0: only check).
#
# Usage:  bench/pgbench-compare.sh            full run (~50 min with the defaults on 2 cores)
#         QUICK=1 bench/pgbench-compare.sh    5 s runs, 1 repetition (~15 min)
#         DURATION=3 REPS=1 CLIENTS=8 WARMUP_S=1 bench/pgbench-compare.sh   smoke test (~6 min)
#
# Settings (environment):
#   DURATION=         seconds per pgbench run for every workload (default: per workload,
#                     select 15, hot 10, heavy 10; QUICK=1: 5);  DURATION_<workload>=N for one
#   REPS=2            repetition passes per cell (QUICK=1: 1)
#   CLIENTS="8 32"    pgbench -c values;  JOBS=2  pgbench -j
#   MODES="simple extended prepared"      pgbench -M values
#   WORKLOADS="select hot heavy"          from workloads.sh: select (pgbench -S, cold for a
#                     cache), hot (1,000-row hot set), heavy (aggregate), tpcb (read-write)
#   TARGETS="direct pgmemo pgmemo-cache pgbouncer pgpool"   from targets.sh ("direct" is always
#                     run, first); also pgmemo-t2 and pgmemo-wal-t2 (--threads 2) and pgmemo-wal
#                     (the default configuration: cache + invalidation through logical replication)
#                     and direct-unix / pgmemo-wal-unix (the same over Unix sockets: pgbench
#                     on PostgreSQL's socket / on pgmemo's --unix-socket-dir)
#                     and relayfloor / relayfloor-go (bench/relayfloor: a byte-copying relay in
#                     Go, in one epoll loop / with two goroutines per client; not pgmemo)
#   SCALE=10          pgbench -i -s
#   HOT_ROWS=1000     size of the hot set (workload hot)
#   SELECT_COLD=1     before each select run, a no-op UPDATE through the target empties a cache
#   WARMUP_S=         seconds of unrecorded warm-up per (mode, target) for hot/heavy, after a
#                     fill pass that reads every hot key once (default 2; 0: none);
#                     WARMUP_CLIENTS=8
#   PG_PORT, PGMEMO_PORT, PGMEMO_CACHE_PORT, BOUNCER_PORT, PGPOOL_PORT   fixed ports
#                     (default: free ones, chosen at start)
#   BOUNCER_POOL_SIZE=40                   PgBouncer pool_size (must be >= max clients)
#   PGPOOL_CHILDREN=  pgpool num_init_children (default max(40, max clients + 8))
#   PGPOOL_CACHE_SIZE=256MB                pgpool memqcache_total_size
#   PGMEMO_BIN=path   use this pgmemo binary instead of building ./cmd/pgmemo
#   PGMEMO_ARGS="..." extra flags for every pgmemo target;  PGMEMO_LOG_LEVEL=warn
#   PGMEMO_CACHE_MAX_BYTES=256MiB  PGMEMO_CACHE_TTL=  PGMEMO_TX_POLICY=until-write
#   PGMEMO_CACHE_ARGS="..."                pgmemo-cache only (it runs --invalidation statement)
#   PGBIN, PGBENCH, PGBOUNCER, PGPOOL      binaries (default: found on this machine)
#   APT_INSTALL=1     as root: apt-get install missing Debian packages (0: only report them)
#   RUN_AS=postgres   user for PostgreSQL/PgBouncer/pgpool/pgmemo when run as root
#   PAUSE_S=1         pause before each run (lets the previous run's backends exit)
#   QUIET_PCT=10      optional: before each run wait until the machine is < 10% busy
#   QUIET_MAX_WAIT_S=900  total budget for that waiting (then runs anyway)
#   RESULTS_DIR=...   default bench/results/<UTC timestamp>
#   KEEP_WORK=1       keep the temp dir (data dir, configs) after exit
#   PG_EXTRA_CONF="..." extra postgresql.conf lines
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

case ${1:-} in
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (settings are environment variables; see --help)" >&2; exit 2 ;;
esac

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then DURATION=${DURATION:-5}; REPS=${REPS:-1}; fi
DURATION=${DURATION:-}           # empty: each workload's WL_DURATION
REPS=${REPS:-2}
CLIENTS=${CLIENTS:-8 32}
JOBS=${JOBS:-2}
MODES=${MODES:-simple extended prepared}
WORKLOADS=${WORKLOADS:-select hot heavy}
TARGETS=${TARGETS:-direct pgmemo pgmemo-cache pgbouncer pgpool}
SCALE=${SCALE:-10}
BENCH_USER=${BENCH_USER:-bench}
BENCH_DB=${BENCH_DB:-bench}
BOUNCER_POOL_SIZE=${BOUNCER_POOL_SIZE:-40}
RUN_AS=${RUN_AS:-postgres}
PAUSE_S=${PAUSE_S:-1}
QUIET_PCT=${QUIET_PCT:-}
QUIET_MAX_WAIT_S=${QUIET_MAX_WAIT_S:-900}
WARMUP_CLIENTS=${WARMUP_CLIENTS:-8}
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=${RESULTS_DIR:-$BENCH_DIR/results/$STAMP}

. "$BENCH_DIR/lib.sh"
. "$BENCH_DIR/targets.sh"
. "$BENCH_DIR/workloads.sh"

# "direct" first, each target once
_t="direct"; for t in $TARGETS; do [[ " $_t " == *" $t "* ]] || _t="$_t $t"; done; TARGETS=$_t
for t in $TARGETS; do
    declare -F "target_${t}_up" >/dev/null || die "unknown target '$t' (define target_${t}_up in bench/targets.sh)"
done
for w in $WORKLOADS; do
    [ -n "${WL_ARGS[$w]:-}" ] || die "unknown workload '$w' (known: ${!WL_ARGS[*]})"
done
for c in $CLIENTS; do
    if needs_target pgbouncer && [ "$c" -gt "$BOUNCER_POOL_SIZE" ]; then
        die "CLIENTS has $c > BOUNCER_POOL_SIZE=$BOUNCER_POOL_SIZE: session-mode clients would queue"
    fi
    if needs_target pgpool && [ "$c" -gt "$(pgpool_children)" ]; then
        die "CLIENTS has $c > PGPOOL_CHILDREN=$(pgpool_children): pgpool clients would queue"
    fi
done
# dur_of WORKLOAD: seconds per measured run
dur_of() { local v="DURATION_$1"; echo "${!v:-${DURATION:-${WL_DURATION[$1]:-15}}}"; }
# warm_of WORKLOAD: seconds of timed warm-up per (mode, target); WARMUP_S overrides the
# workloads that have one (not select: its runs are meant to start cold)
warm_of() { if [ "${WL_WARMUP_S[$1]:-0}" -gt 0 ]; then echo "${WARMUP_S:-${WL_WARMUP_S[$1]}}"; else echo 0; fi; }

check_prereqs
set_runas

# ---------------------------------------------------------------------------
# Work and results directories, cleanup

mkdir -p "$RESULTS/raw" || die "cannot create $RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
WORK=$(mktemp -d /tmp/pgmemo-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
PIDS_DIR=$WORK/pids
LOGS=$WORK/logs
mkdir -p "$PIDS_DIR" "$LOGS"
own_path "$LOGS"
CSV=$RESULTS/results.csv
REPORT=$RESULTS/report.md
STARTED=()          # targets whose _up ran (stopped in reverse order)
PGBENCH_PID=
REPORT_DONE=0

cleanup() {
    local rc=$? i
    trap '' INT TERM
    trap - EXIT
    if [ -n "$PGBENCH_PID" ] && kill -0 "$PGBENCH_PID" 2>/dev/null; then
        kill -TERM "$PGBENCH_PID" 2>/dev/null; wait "$PGBENCH_PID" 2>/dev/null
    fi
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do "target_${STARTED[i]}_down"; done
    pg_down
    if [ -d "$LOGS" ] && [ -d "$RESULTS" ]; then mkdir -p "$RESULTS/logs" && cp -r "$LOGS"/. "$RESULTS/logs/" 2>/dev/null; fi
    if [ "$REPORT_DONE" = 0 ] && [ -s "$CSV" ] && [ "$(wc -l <"$CSV")" -gt 1 ]; then
        write_report "INCOMPLETE: the run stopped early (exit status $rc)" >/dev/null 2>&1 \
            && log "partial results: $REPORT"
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted: cleaning up"; exit 130' INT
trap 'log "terminated: cleaning up"; exit 143' TERM

# ---------------------------------------------------------------------------
# Meta data: date, machine, versions

meta() {
    local mem cpu
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    echo "date        : $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine     : $(hostname), $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r) $(uname -m)$( [ -r /etc/os-release ] && . /etc/os-release && echo ", $PRETTY_NAME")"
    echo "postgres    : $("$PGBIN/postgres" --version)"
    echo "pgbench     : $("$PGBENCH" --version)"
    needs_target pgbouncer && echo "pgbouncer   : $("$PGBOUNCER" --version 2>&1 | head -1)"
    needs_target pgpool && echo "pgpool      : $("$PGPOOL" --version 2>&1 | head -1)"
    if needs_pgmemo; then
        echo "pgmemo      : $PGMEMO_REV; $PGMEMO_BUILD"
        command -v go >/dev/null 2>&1 && echo "go          : $(go version)"
    fi
    echo "matrix      : workloads [$WORKLOADS] modes [$MODES] clients [$CLIENTS] -j $JOBS, REPS=$REPS$( [ "$QUICK" = 1 ] && echo ' (QUICK=1)'); targets interleaved per pass: $TARGETS"
    echo "durations   : $(for w in $WORKLOADS; do printf '%s %ss per run%s; ' "$w" "$(dur_of "$w")" "$( [ -n "${WL_FILL[$w]:-}" ] && echo ", fill pass")$( [ "$(warm_of "$w")" -gt 0 ] && echo " + $(warm_of "$w")s warm-up at -c $WARMUP_CLIENTS")"; done | sed 's/; $//') (fill/warm-up: per mode and target, unrecorded)"
    echo "cluster     : scale $SCALE (${DATA_DESC:-?}), prewarmed: ${PREWARM:-?}"
    echo "pg settings : ${PG_SETTINGS:-?}  (fsync/synchronous_commit/full_page_writes off: benchmark-only, crash-unsafe)"
    echo "note        : pgbench, PostgreSQL and the proxy all share this machine's $(nproc) CPUs$( [ -n "$QUIET_PCT" ] && echo "; each run waited for < ${QUIET_PCT}% machine load (budget ${QUIET_MAX_WAIT_S}s, ${QUIET_SPENT}s used)")"
}

# ---------------------------------------------------------------------------
# One pgbench run

to_s() { awk '{ s = 0; for (i = 1; i <= NF; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1] * 60 + a[2] } printf "%.3f\n", s }'; }

# cache_counters TARGET: "HITS MISSES UNCACHED" of a caching target (target_TARGET_stats), else ""
cache_counters() { if declare -F "target_${1}_stats" >/dev/null; then "target_${1}_stats"; fi; }

# run_one WORKLOAD MODE CLIENTS REP TARGET DURATION [LOAD]
#   REP=warmup|fill: output kept in raw/, not recorded in results.csv.
#   LOAD replaces the pgbench load arguments (default: the workload's script, -M MODE -c CLIENTS
#   -j JOBS -T DURATION); the fill pass uses it.
run_one() {
    local wl=$1 mode=$2 clients=$3 rep=$4 tg=$5 dur=$6 load=${7:-}
    # First: it may start or stop targets (wl_tpcb_before_run), which changes their port and pid.
    if declare -F "wl_${wl}_before_run" >/dev/null; then "wl_${wl}_before_run" "$tg"; fi
    local port=${TG_PORT[$tg]} db=${TG_DB[$tg]} ppid=${TG_PID[$tg]:-0}
    local raw=$RESULTS/raw/${wl}_${mode}_c${clients}_${rep}_${tg}.txt
    [ -n "$load" ] || load="${WL_ARGS[$wl]} -M $mode -c $clients -j $JOBS -T $dur"
    local cmd="$PGBENCH -n $load -h ${TG_HOST[$tg]:-127.0.0.1} -p $port -U $BENCH_USER $db"
    local pg0 px0 pg1 px1 m0 m1 t0 t1 c0 c1 rc started
    local h0="" ms0="" u0="" h1="" ms1="" u1=""
    sleep "$PAUSE_S"
    [ -n "$QUIET_PCT" ] && [ "$rep" != warmup ] && [ "$rep" != fill ] && wait_quiet "$QUIET_PCT" "$QUIET_MAX_WAIT_S"
    read -r h0 ms0 u0 < <(cache_counters "$tg")      # outside the CPU window: psql through the proxy
    started=$(date -u +%H:%M:%S)
    settle_children "$PG_PID" "$ppid"
    read -r pg0 px0 < <(cpu_ticks "$PG_PID" "$ppid")
    m0=$(machine_busy_ticks); t0=$(date +%s.%N)
    times >"$WORK/times0"                       # our children's CPU so far (pgbench is our only child in between)
    $cmd >"$raw" 2>&1 &
    PGBENCH_PID=$!
    wait "$PGBENCH_PID"; rc=$?
    PGBENCH_PID=
    times >"$WORK/times1"
    t1=$(date +%s.%N); m1=$(machine_busy_ticks)
    settle_children "$PG_PID" "$ppid"       # the run's backends exit (or go idle in a pool)
    read -r pg1 px1 < <(cpu_ticks "$PG_PID" "$ppid")
    read -r h1 ms1 u1 < <(cache_counters "$tg")
    c0=$(tail -1 "$WORK/times0" | to_s); c1=$(tail -1 "$WORK/times1" | to_s)

    local tps lat conn txns failed
    tps=$(pgb_field '^tps = .*without initial' 3 "$raw")
    lat=$(pgb_field '^latency average = ' 4 "$raw")
    conn=$(pgb_field '^initial connection time = ' 5 "$raw")
    txns=$(pgb_field 'number of transactions actually processed:' 6 "$raw"); txns=${txns%%/*}
    failed=$(pgb_field 'number of failed transactions:' 5 "$raw")
    if [ "$rc" = 0 ] && grep -qE 'aborted|error|FATAL' "$raw"; then rc=99; fi
    if [ "$rc" = 0 ] && [ -n "$failed" ] && [ "$failed" != 0 ]; then rc=98; fi
    [ "$rc" != 0 ] && log "  pgbench failed (rc=$rc), see $raw: $(grep -m1 -iE 'error|aborted|fatal' "$raw")"

    # cache counters over the run: hits, misses, uncached (not cacheable / bypassed), hit %
    local cache=",,,"
    if [ -n "$h0" ] && [ -n "$h1" ]; then
        cache=$(awk -v h0="$h0" -v h1="$h1" -v m0="$ms0" -v m1="$ms1" -v u0="${u0:-0}" -v u1="${u1:-0}" 'BEGIN {
            h = h1 - h0; m = m1 - m0; u = u1 - u0
            printf "%d,%d,%d,%s", h, m, u, (h + m > 0) ? sprintf("%.2f", 100 * h / (h + m)) : "" }')
    elif declare -F "target_${tg}_stats" >/dev/null; then
        log "  WARNING: could not read the cache counters of $tg (before: '${h0:-}', after: '${h1:-}')"
    fi

    local row
    row=$(awk -v pg0="$pg0" -v pg1="$pg1" -v px0="$px0" -v px1="$px1" -v m0="$m0" -v m1="$m1" \
              -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v n="${txns:-0}" -v hz="$CLK_TCK" \
              -v ncpu="$NCPU" -v hasproxy="$([ "$ppid" != 0 ] && echo 1 || echo 0)" 'BEGIN {
        w = t1 - t0; pg = (pg1 - pg0) / hz; px = (px1 - px0) / hz; cl = c1 - c0; busy = (m1 - m0) / hz
        other = busy - pg - px - cl; if (other < 0) other = 0
        pxs = hasproxy ? sprintf("%.2f", px) : ""
        pxu = (hasproxy && n > 0) ? sprintf("%.2f", px * 1e6 / n) : ""
        pgu = (n > 0) ? sprintf("%.2f", pg * 1e6 / n) : ""
        clu = (n > 0) ? sprintf("%.2f", cl * 1e6 / n) : ""
        printf "%.2f,%s,%.2f,%.2f,%.2f,%.1f,%s,%s,%s", w, pxs, pg, cl, busy, 100 * other / (w * ncpu), pxu, pgu, clu }')
    if [ "$rep" != warmup ] && [ "$rep" != fill ]; then
        echo "$wl,$mode,$clients,$rep,$tg,${tps:-},${lat:-},${conn:-},${txns:-},${failed:-},$rc,$row,$cache,$started,\"$cmd\"" >>"$CSV"
    fi
    local other pxu pgu hits hp hit=-
    IFS=, read -r _ _ _ _ _ other pxu pgu _ <<<"$row"
    IFS=, read -r hits _ _ hp <<<"$cache"
    if [ -n "$hp" ]; then hit="$hp%"; elif [ -n "$hits" ]; then hit="0 lookups"; fi
    printf '[%s] %-5s %-8s c=%-2s %-6s %-12s tps=%-9s lat=%-7s proxy=%-6s pg=%-7s µs/txn hit=%-7s other=%s%% rc=%s\n' \
        "$started" "$wl" "$mode" "$clients" "$rep" "$tg" "${tps:-?}" "${lat:-?}" "${pxu:--}" "${pgu:--}" \
        "$hit" "$other" "$rc" >&2
}

# ---------------------------------------------------------------------------
# Report

commands_md() {
    echo "Exact commands (every run's pgbench command line is also the last column of results.csv):"
    echo
    echo '```'
    [ ${#RUNAS[@]} -gt 0 ] && echo "# PostgreSQL and the proxies run as user $RUN_AS: ${RUNAS[*]} <command>; daemons under setsid"
    needs_pgmemo && echo "$PGMEMO_BUILD"
    echo "$INITDB_CMD"
    echo "# postgresql.conf additions:"
    sed -n '/^# ---- bench\/pgbench-compare.sh ----/,$p' "$PGDATA_DIR/postgresql.conf" 2>/dev/null | grep -v '^\s*$' | sed 's/^/#   /'
    echo "$PG_CTL_CMD"
    echo "$PGBENCH_INIT_CMD"
    echo "# then VACUUM ANALYZE; prewarm: $PREWARM"
    for t in $TARGETS; do
        [ "$t" = direct ] && continue
        [ -n "${TG_CMD[$t]:-}" ] && echo "${TG_CMD[$t]}"
    done
    for w in $WORKLOADS; do
        [ -n "${WL_FILL[$w]:-}" ] && echo "# $w fill pass (per mode and target, before the first cell; script in raw/fill_$w.sql): $PGBENCH -n -f fill_$w.sql -M MODE -c 1 -j 1 -t 1 ..."
        [ "$(warm_of "$w")" -gt 0 ] && echo "# $w warm-up (per mode and target, unrecorded): $PGBENCH -n ${WL_ARGS[$w]} -M MODE -c $WARMUP_CLIENTS -j $JOBS -T $(warm_of "$w") ..."
    done
    [[ " $WORKLOADS " == *" select "* ]] && [ "${SELECT_COLD:-1}" = 1 ] && echo "# select: before each run, through the target: $PSQL -X -q -h 127.0.0.1 -p PORT -U $BENCH_USER -d $BENCH_DB -c 'UPDATE pgbench_accounts SET abalance = abalance WHERE aid = 0'"
    echo "# pgbench runs (each cell: $REPS pass(es) over the targets in this order), before each: sleep $PAUSE_S"
    if [ -s "$CSV" ]; then awk -F, 'NR > 1 { c = $NF; gsub(/"/, "", c); if (!(c in s)) { s[c] = 1; print c } }' "$CSV"; fi
    echo '```'
}

write_report() {   # write_report [NOTE] -> $REPORT, and prints it
    {
        echo "# pgbench: direct PostgreSQL vs $(echo "$TARGETS" | sed 's/^direct //; s/ /, /g')"
        echo
        [ -n "${1:-}" ] && { echo "**$1**"; echo; }
        echo '```'
        meta
        echo '```'
        echo
        for w in $WORKLOADS; do echo "- **$w**: ${WL_DESC[$w]}"; done
        for t in $TARGETS; do echo "- **$t**: ${TG_DESC[$t]:-not started}"; done
        echo
        echo "tps = pgbench \"tps (without initial connection time)\", median over repetitions; **x direct** = target tps /"
        echo "direct tps of the same repetition pass, median [min..max]; lat = pgbench \"latency average\"; proxy / PG"
        echo "CPU µs/txn = utime+stime delta (/proc/PID/stat) of the proxy process / of PostgreSQL (postmaster +"
        echo "backends) over the run / transactions; other CPU % = max share of all CPUs used by processes outside"
        echo "the benchmark during a run (noise; pgbench client itself excluded); hit % = cache hits / (hits + misses)"
        echo "over the run, from the caching target's own counters (pgmemo-cache: SHOW pgmemo.stats, pgpool: SHOW"
        echo "POOL_CACHE), read through its port before and after the run.  For a caching target at ~100 % hits the"
        echo "proxy CPU µs/txn is its CPU per cache hit."
        echo
        "$BENCH_DIR/report.sh" "$CSV"
        commands_md
        echo
        echo "Files: results.csv (one row per run), raw/ (pgbench output), logs/ (PostgreSQL, proxies)."
    } >"$REPORT"
    REPORT_DONE=1
    cat "$REPORT"
}

# ---------------------------------------------------------------------------
# Main

log "results -> $RESULTS  (temp dir $WORK)"
needs_pgmemo && pgmemo_build
pg_up
pg_load
for t in $TARGETS; do
    STARTED+=("$t")
    "target_${t}_up"
done

echo "workload,mode,clients,rep,target,tps,lat_ms,conn_ms,txns,failed,rc,wall_s,proxy_cpu_s,pg_cpu_s,pgbench_cpu_s,machine_busy_s,other_cpu_pct,proxy_us_per_txn,pg_us_per_txn,pgbench_us_per_txn,cache_hits,cache_misses,cache_uncached,hit_pct,started_utc,command" >"$CSV"
meta >"$RESULTS/meta.txt"

ncells=0; est_s=0; ntg=$(wc -w <<<"$TARGETS")
for w in $WORKLOADS; do for m in $MODES; do
    [[ " ${WL_MODES[$w]} " == *" $m "* ]] || continue
    n=$(wc -w <<<"$CLIENTS"); ncells=$((ncells + n))
    est_s=$(( est_s + n * REPS * ntg * ($(dur_of "$w") + PAUSE_S + 2) + ntg * ($(warm_of "$w") + PAUSE_S + 2) ))
    [ -n "${WL_FILL[$w]:-}" ] && est_s=$(( est_s + ntg * (PAUSE_S + 3) ))
done; done
log "matrix: $ncells cells x $REPS pass(es) x targets [$TARGETS] ~ $(( est_s / 60 + 1 )) min"

for w in $WORKLOADS; do
    fill=
    if [ -n "${WL_FILL[$w]:-}" ]; then
        fill=$RESULTS/raw/fill_$w.sql
        "${WL_FILL[$w]}" "$fill" || die "writing the fill script for $w failed"
    fi
    for mode in $MODES; do
        [[ " ${WL_MODES[$w]} " == *" $mode "* ]] || continue
        sel=()
        for t in $TARGETS; do [[ " ${TG_MODES[$t]} " == *" $mode "* ]] && sel+=("$t"); done
        if [ -n "$fill" ]; then
            for t in "${sel[@]}"; do run_one "$w" "$mode" 1 fill "$t" 0 "-f $fill -M $mode -c 1 -j 1 -t 1"; done
        fi
        warm=$(warm_of "$w")
        if [ "$warm" -gt 0 ]; then
            for t in "${sel[@]}"; do run_one "$w" "$mode" "$WARMUP_CLIENTS" warmup "$t" "$warm"; done
        fi
        for clients in $CLIENTS; do
            for rep in $(seq 1 "$REPS"); do
                for t in "${sel[@]}"; do run_one "$w" "$mode" "$clients" "r$rep" "$t" "$(dur_of "$w")"; done
            done
        done
    done
done

echo
write_report
echo
log "wrote $REPORT and $CSV"
