#!/usr/bin/env bash
# bench/pgbench-compare.sh - pgbench through pgmemo vs. direct PostgreSQL vs. PgBouncer.
#
# Starts a throwaway PostgreSQL cluster (initdb in a temp dir, 127.0.0.1 only), loads
# pgbench -i -s $SCALE and prewarms it, builds pgmemo from this repository, starts pgmemo
# and PgBouncer (session mode) in front of it, and runs pgbench for every
# (workload, mode, clients) cell with the targets interleaved: direct, pgmemo, pgbouncer,
# direct, pgmemo, pgbouncer, ... ($REPS passes).  Records tps, latency and CPU time per
# transaction of the proxy and of PostgreSQL (from /proc), prints a markdown table and
# writes it with the raw CSV and pgbench output under bench/results/<timestamp>/.
# Everything it started is stopped and the temp dir removed on exit, including Ctrl-C.
#
# Installs nothing: needs PostgreSQL server binaries + pgbench (Debian: postgresql,
# postgresql-contrib), pgbouncer (Debian: pgbouncer) and Go (to build pgmemo).
#
# Usage:  bench/pgbench-compare.sh            full run (~11 min with the defaults)
#         QUICK=1 bench/pgbench-compare.sh    5 s runs, 1 repetition (~3 min): a smoke test
#
# Settings (environment):
#   DURATION=15       seconds per pgbench run (QUICK=1: 5)
#   REPS=2            repetition passes per cell (QUICK=1: 1)
#   CLIENTS="8 32"    pgbench -c values;  JOBS=2  pgbench -j
#   MODES="simple extended prepared"      pgbench -M values
#   WORKLOADS=select  from workloads.sh: select (pgbench -S), hot (1,000-row hot set), heavy (aggregate)
#   TARGETS="direct pgmemo pgbouncer"     from targets.sh ("direct" is always run, first)
#   SCALE=10          pgbench -i -s
#   PG_PORT, PGMEMO_PORT, BOUNCER_PORT    fixed ports (default: free ones, chosen at start)
#   BOUNCER_POOL_SIZE=40                   PgBouncer pool_size (must be >= max clients)
#   PGMEMO_BIN=path   use this pgmemo binary instead of building ./cmd/pgmemo
#   PGMEMO_ARGS="..." extra pgmemo flags;  PGMEMO_LOG_LEVEL=warn
#   PGBIN, PGBENCH, PGBOUNCER              binaries (default: found on this machine)
#   RUN_AS=postgres   user for PostgreSQL/PgBouncer/pgmemo when run as root
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
DURATION=${DURATION:-15}
REPS=${REPS:-2}
CLIENTS=${CLIENTS:-8 32}
JOBS=${JOBS:-2}
MODES=${MODES:-simple extended prepared}
WORKLOADS=${WORKLOADS:-select}
TARGETS=${TARGETS:-direct pgmemo pgbouncer}
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
done

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
    local mem cpu git_rev
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
    echo "date        : $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine     : $(hostname), $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r) $(uname -m)$( [ -r /etc/os-release ] && . /etc/os-release && echo ", $PRETTY_NAME")"
    echo "postgres    : $("$PGBIN/postgres" --version)"
    echo "pgbench     : $("$PGBENCH" --version)"
    needs_target pgbouncer && echo "pgbouncer   : $("$PGBOUNCER" --version 2>&1 | head -1)"
    if needs_target pgmemo; then
        echo "pgmemo      : git $git_rev$(pgmemo_dirty); $PGMEMO_BUILD"
        command -v go >/dev/null 2>&1 && echo "go          : $(go version)"
    fi
    echo "matrix      : workloads [$WORKLOADS] modes [$MODES] clients [$CLIENTS] -j $JOBS, ${DURATION}s per run, REPS=$REPS$( [ "$QUICK" = 1 ] && echo ' (QUICK=1)'); targets interleaved per pass: $TARGETS"
    echo "cluster     : scale $SCALE (${DATA_DESC:-?}), prewarmed: ${PREWARM:-?}"
    echo "pg settings : ${PG_SETTINGS:-?}  (fsync/synchronous_commit/full_page_writes off: benchmark-only, crash-unsafe)"
    echo "note        : pgbench, PostgreSQL and the proxy all share this machine's $(nproc) CPUs$( [ -n "$QUIET_PCT" ] && echo "; each run waited for < ${QUIET_PCT}% machine load (budget ${QUIET_MAX_WAIT_S}s, ${QUIET_SPENT}s used)")"
}

# ---------------------------------------------------------------------------
# One pgbench run

to_s() { awk '{ s = 0; for (i = 1; i <= NF; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1] * 60 + a[2] } printf "%.3f\n", s }'; }

# run_one WORKLOAD MODE CLIENTS REP TARGET DURATION   (REP=warmup: output kept, not recorded)
run_one() {
    local wl=$1 mode=$2 clients=$3 rep=$4 tg=$5 dur=$6
    local port=${TG_PORT[$tg]} db=${TG_DB[$tg]} ppid=${TG_PID[$tg]:-0}
    local raw=$RESULTS/raw/${wl}_${mode}_c${clients}_${rep}_${tg}.txt
    local cmd="$PGBENCH -n ${WL_ARGS[$wl]} -M $mode -c $clients -j $JOBS -T $dur -h 127.0.0.1 -p $port -U $BENCH_USER $db"
    local pg0 px0 pg1 px1 m0 m1 t0 t1 c0 c1 rc started
    if declare -F "wl_${wl}_before_run" >/dev/null; then "wl_${wl}_before_run" "$tg"; fi
    sleep "$PAUSE_S"
    [ -n "$QUIET_PCT" ] && [ "$rep" != warmup ] && wait_quiet "$QUIET_PCT" "$QUIET_MAX_WAIT_S"
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
    if [ "$rep" != warmup ]; then
        echo "$wl,$mode,$clients,$rep,$tg,${tps:-},${lat:-},${conn:-},${txns:-},${failed:-},$rc,$row,$started,\"$cmd\"" >>"$CSV"
    fi
    IFS=, read -r _ _ _ _ _ other pxu pgu _ <<<"$row"
    printf '[%s] %-7s %-8s c=%-2s %-6s %-10s tps=%-10s lat=%-7s proxy=%-6s pg=%-6s µs/txn other=%s%% rc=%s\n' \
        "$started" "$wl" "$mode" "$clients" "$rep" "$tg" "${tps:-?}" "${lat:-?}" "${pxu:--}" "${pgu:--}" "$other" "$rc" >&2
}

# ---------------------------------------------------------------------------
# Report

commands_md() {
    echo "Exact commands (every run's pgbench command line is also the last column of results.csv):"
    echo
    echo '```'
    [ ${#RUNAS[@]} -gt 0 ] && echo "# PostgreSQL, pgmemo and PgBouncer run as user $RUN_AS: ${RUNAS[*]} <command>; daemons under setsid"
    needs_target pgmemo && echo "$PGMEMO_BUILD"
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
        echo "the benchmark during a run (noise; pgbench client itself excluded)."
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
needs_target pgmemo && pgmemo_build
pg_up
pg_load
for t in $TARGETS; do
    STARTED+=("$t")
    "target_${t}_up"
done

echo "workload,mode,clients,rep,target,tps,lat_ms,conn_ms,txns,failed,rc,wall_s,proxy_cpu_s,pg_cpu_s,pgbench_cpu_s,machine_busy_s,other_cpu_pct,proxy_us_per_txn,pg_us_per_txn,pgbench_us_per_txn,started_utc,command" >"$CSV"
meta >"$RESULTS/meta.txt"

ncells=0
for w in $WORKLOADS; do for m in $MODES; do [[ " ${WL_MODES[$w]} " == *" $m "* ]] && ncells=$((ncells + $(echo $CLIENTS | wc -w))); done; done
log "matrix: $ncells cells x $REPS pass(es) x targets [$TARGETS] x ${DURATION}s ~ $(( ncells * REPS * $(echo $TARGETS | wc -w) * (DURATION + PAUSE_S + 1) / 60 + 1 )) min"

for w in $WORKLOADS; do
    for mode in $MODES; do
        [[ " ${WL_MODES[$w]} " == *" $mode "* ]] || continue
        sel=()
        for t in $TARGETS; do [[ " ${TG_MODES[$t]} " == *" $mode "* ]] && sel+=("$t"); done
        warm=${WL_WARMUP_S[$w]:-0}
        if [ "$warm" -gt 0 ]; then
            for t in "${sel[@]}"; do run_one "$w" "$mode" "$WARMUP_CLIENTS" warmup "$t" "$warm"; done
        fi
        for clients in $CLIENTS; do
            for rep in $(seq 1 "$REPS"); do
                for t in "${sel[@]}"; do run_one "$w" "$mode" "$clients" "r$rep" "$t" "$DURATION"; done
            done
        done
    done
done

echo
write_report
echo
log "wrote $REPORT and $CSV"
