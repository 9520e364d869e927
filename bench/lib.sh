# bench/lib.sh - helpers for bench/pgbench-compare.sh (sourced, not run).
#
# Logging, prerequisite checks, free ports, running daemons as an unprivileged
# user, CPU accounting from /proc, pgbench output parsing.  No global side
# effects except the variables documented next to each function.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

# ---------------------------------------------------------------------------
# Prerequisites

# find_pgbin: sets PGBIN to a directory holding the PostgreSQL server binaries
# ($PGBIN if given, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin).
find_pgbin() {
    local d
    if [ -n "${PGBIN:-}" ]; then
        [ -x "$PGBIN/postgres" ] || die "PGBIN=$PGBIN has no postgres binary"
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null)
        if [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then PGBIN=$d; return 0; fi
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n -r); do
        if [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then PGBIN=$d; return 0; fi
    done
    PGBIN=
    return 1
}

# detect_prereqs: looks for every tool the benchmark needs.  Sets PGBIN PSQL PGBENCH
# PGBOUNCER PGPOOL, and MISSING (what is not there) and PKGS (Debian packages providing it).
detect_prereqs() {
    local t
    MISSING=(); PKGS=()
    if ! find_pgbin; then
        MISSING+=("PostgreSQL server binaries (initdb, pg_ctl, postgres)")
        PKGS+=(postgresql)
    else
        for t in initdb pg_ctl postgres psql; do
            [ -x "$PGBIN/$t" ] || { MISSING+=("$PGBIN/$t"); PKGS+=(postgresql); }
        done
    fi
    PSQL=${PSQL_GIVEN:-${PGBIN:+$PGBIN/psql}}
    PGBENCH=${PGBENCH_GIVEN:-}
    if [ -z "$PGBENCH" ]; then
        if [ -n "$PGBIN" ] && [ -x "$PGBIN/pgbench" ]; then PGBENCH=$PGBIN/pgbench
        elif command -v pgbench >/dev/null 2>&1; then PGBENCH=$(command -v pgbench); fi
    fi
    if [ -z "$PGBENCH" ] || [ ! -x "$PGBENCH" ]; then MISSING+=("pgbench"); PKGS+=(postgresql-contrib); fi
    PGBOUNCER=${PGBOUNCER_GIVEN:-$(command -v pgbouncer 2>/dev/null || true)}
    [ -z "$PGBOUNCER" ] && [ -x /usr/sbin/pgbouncer ] && PGBOUNCER=/usr/sbin/pgbouncer
    if needs_target pgbouncer && { [ -z "$PGBOUNCER" ] || [ ! -x "$PGBOUNCER" ]; }; then
        MISSING+=("pgbouncer"); PKGS+=(pgbouncer)
    fi
    PGPOOL=${PGPOOL_GIVEN:-$(command -v pgpool 2>/dev/null || true)}
    [ -z "$PGPOOL" ] && [ -x /usr/sbin/pgpool ] && PGPOOL=/usr/sbin/pgpool
    if needs_target pgpool && { [ -z "$PGPOOL" ] || [ ! -x "$PGPOOL" ]; }; then
        MISSING+=("pgpool (pgpool-II)"); PKGS+=(pgpool2)
    fi
    if { needs_target relayfloor || needs_target relayfloor-go; } && ! command -v go >/dev/null 2>&1; then
        MISSING+=("go (to build ./bench/relayfloor)")
    fi
    if needs_pgmemo && [ -z "${PGMEMO_BIN:-}" ] && ! command -v go >/dev/null 2>&1; then
        MISSING+=("go (to build ./cmd/pgmemo; or set PGMEMO_BIN to a built binary)")
    fi
    for t in setpriv ss awk; do
        command -v "$t" >/dev/null 2>&1 || MISSING+=("$t")
    done
    if [ "$(id -u)" = 0 ] && ! id "$RUN_AS" >/dev/null 2>&1; then
        MISSING+=("user '$RUN_AS' (PostgreSQL, PgBouncer and pgpool refuse to run as root; set RUN_AS=<user>)")
        PKGS+=(postgresql)
    fi
}

# apt_install PKG...: apt-get install Debian packages without starting their system-wide
# services (a temporary policy-rc.d that says "exit 101" unless one exists already).
apt_install() {
    local tmp_policy=0 rc
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && tmp_policy=1
    fi
    log "apt-get install $* (APT_INSTALL=0 turns this off)"
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
    rc=$?
    [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return "$rc"
}

# check_prereqs: verifies every tool the benchmark needs.  Missing Debian packages are
# installed with apt-get when running as root and APT_INSTALL=1 (the default); otherwise,
# or if that fails, all missing pieces are reported at once and the script exits.
PSQL_GIVEN=${PSQL:-}; PGBENCH_GIVEN=${PGBENCH:-}; PGBOUNCER_GIVEN=${PGBOUNCER:-}; PGPOOL_GIVEN=${PGPOOL:-}
check_prereqs() {
    local t pkgs
    detect_prereqs
    if [ ${#PKGS[@]} -gt 0 ] && [ "${APT_INSTALL:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        mapfile -t pkgs < <(printf '%s\n' "${PKGS[@]}" | sort -u)
        apt_install "${pkgs[@]}" || log "apt-get install ${pkgs[*]} failed"
        detect_prereqs
    fi
    if [ ${#MISSING[@]} -gt 0 ]; then
        log "missing prerequisites:"
        for t in "${MISSING[@]}"; do log "  - $t"; done
        if [ ${#PKGS[@]} -gt 0 ]; then
            log "on Debian/Ubuntu: apt-get install $(printf '%s\n' "${PKGS[@]}" | sort -u | tr '\n' ' ')"
            log "(postgresql = server binaries, postgresql-contrib = pgbench/pg_prewarm, pgbouncer = PgBouncer, pgpool2 = pgpool-II)"
        fi
        log "or point PGBIN=/path/to/postgres/bin, PGBENCH=..., PGBOUNCER=..., PGPOOL=... at existing installs"
        exit 2
    fi
}

# needs_target NAME: 0 if NAME is in $TARGETS
needs_target() { [[ " $TARGETS " == *" $1 "* ]]; }
# needs_pgmemo: 0 if any pgmemo target (pgmemo, pgmemo-t2, pgmemo-cache, ...) is in $TARGETS
needs_pgmemo() { [[ " $TARGETS " == *" pgmemo"* ]]; }

# ---------------------------------------------------------------------------
# Ports and processes

# port_in_use PORT: 0 if something listens on 127.0.0.1:PORT or *:PORT (TCP)
port_in_use() {
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ] && return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    return 1
}

# free_port [AVOID...]: prints a TCP port that nothing listens on and that is not
# one of AVOID (ports we picked already but have not bound yet).
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        [[ " $* " == *" $p "* ]] && continue
        port_in_use "$p" && continue
        echo "$p"; return 0
    done
    die "no free TCP port found"
}

# RUNAS: command prefix that drops to $RUN_AS when we are root (PostgreSQL and
# PgBouncer refuse to run as root); empty otherwise.  setpriv execs, so the pid
# of "${RUNAS[@]}" CMD is the pid of CMD.
set_runas() {
    if [ "$(id -u)" = 0 ]; then
        RUNAS=(setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups --)
    else
        RUNAS=()
    fi
}

# own_path PATH...: make PATH writable by the user the daemons run as
own_path() { if [ "$(id -u)" = 0 ]; then chown "$RUN_AS:" "$@"; fi; }

# start_daemon NAME EXPECTED_COMM LOGFILE CMD... : start a foreground-mode daemon in
# the background, in its own session (so a Ctrl-C in the terminal reaches only
# this script, whose trap then stops the daemon), and record its pid in
# $PIDS_DIR/NAME.  Sets DAEMON_PID.  Fails unless that pid is the daemon itself.
start_daemon() {
    local name=$1 comm=$2 logf=$3 c; shift 3
    # setsid does not fork (a background job is not a group leader) and setpriv
    # execs, so $! is the daemon's own pid.
    setsid "$@" >>"$logf" 2>&1 </dev/null &
    DAEMON_PID=$!
    echo "$DAEMON_PID" >"$PIDS_DIR/$name"
    sleep 0.3
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        tail -20 "$logf" >&2
        die "$name exited right after start (log: $logf)"
    fi
    c=$(cat "/proc/$DAEMON_PID/comm" 2>/dev/null)
    if [ "$c" != "$comm" ]; then
        stop_pid "$name" "$DAEMON_PID" TERM 10
        die "$name: pid $DAEMON_PID is '$c', expected '$comm'"
    fi
    log "started $name (pid $DAEMON_PID)"
}

# comm_of PATH: the kernel's name for a process started from PATH (basename, 15 chars)
comm_of() { local b=${1##*/}; echo "${b:0:15}"; }

# stop_pid NAME PID [SIGNAL] [WAIT_S]: signal PID, wait, then SIGKILL.  Only ever our own pids.
stop_pid() {
    local name=$1 pid=$2 sig=${3:-TERM} t=${4:-15} i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -s "$sig" "$pid" 2>/dev/null
    for i in $(seq 1 $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) still running after SIG$sig, sending SIGKILL"
        kill -s KILL "$pid" 2>/dev/null
    fi
    log "stopped $name (pid $pid)"
}

# wait_sql PORT DB SECONDS: wait until a PostgreSQL-protocol endpoint answers SELECT 1
wait_sql() {
    local port=$1 db=$2 t=$3 i
    for i in $(seq 1 $((t * 4))); do
        "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -d "$db" -Atc 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

# ---------------------------------------------------------------------------
# CPU accounting (ticks of 1/CLK_TCK s, from /proc/PID/stat)

# cpu_ticks PID...: for each PID, the CPU ticks (utime+stime) of that process
# (all threads), of its live children and of its reaped children (cutime+cstime),
# printed space separated in argument order (pass 0 for "no process": prints 0).
# For the postmaster this is all of PostgreSQL: backends and background workers
# are its children and it reaps them.  For a one-process proxy (pgmemo, PgBouncer)
# it is the process itself; for a forking one (pgpool-II) it includes its children.
cpu_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) { if (r[i] > 0) idx[r[i]] = i; s[i] = 0 } }
        { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
          # f[2]=ppid f[12]=utime f[13]=stime f[14]=cutime f[15]=cstime
          if (pid in idx) s[idx[pid]] += f[12] + f[13] + f[14] + f[15]
          else if (f[2] in idx) s[idx[f[2]]] += f[12] + f[13] }
        END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), s[i]; printf "\n" }'
}

# settle_children PID...: wait (at most 5 s) until the set of children of each PID is
# unchanged over three polls 0.1 s apart and none of them is a zombie.  A backend that
# exits while cpu_ticks reads /proc is either missed (not yet in the postmaster's cutime)
# or counted twice, so the snapshots after a run wait until the run's backends are gone
# (or, behind a pooler, stay).
children_state() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) if (r[i] > 0) root[r[i]] = 1 }
        { line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
          if (f[2] in root) printf "%s%s ", $1, (f[1] == "Z" ? "Z" : "") }'
}
settle_children() {
    local prev="" cur same=0 i
    for i in $(seq 1 50); do
        cur=$(children_state "$@")
        if [[ "$cur" != *Z* ]] && [ "$cur" = "$prev" ]; then
            same=$((same + 1)); [ "$same" -ge 2 ] && return 0
        else
            same=0
        fi
        prev=$cur; sleep 0.1
    done
    log "  warning: the children of pid(s) $* did not settle within 5 s; CPU figures of this run may be off"
}

# machine_busy_ticks: all non-idle, non-iowait, non-steal CPU time of the machine
machine_busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }

# ---------------------------------------------------------------------------
# pgbench output

# pgb_field REGEX FIELDNO FILE: field FIELDNO of the first line matching REGEX
pgb_field() { awk -v re="$1" -v n="$2" '$0 ~ re {print $n; exit}' "$3"; }

# wait_quiet PCT MAX_S: wait (at most MAX_S seconds in total over the whole run) until the
# machine is less than PCT% busy over one second.  Sets QUIET_WAITED (seconds this call).
QUIET_SPENT=0
wait_quiet() {
    local pct=$1 max=$2 a b busy
    QUIET_WAITED=0
    while :; do
        a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6; exit}' /proc/stat); sleep 1
        b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6; exit}' /proc/stat)
        busy=$(echo "$a $b" | awk '{bu = $3 - $1; id = $4 - $2; printf "%d", (bu + id > 0) ? 100 * bu / (bu + id) : 0}')
        [ "$busy" -lt "$pct" ] && return 0
        if [ "$QUIET_SPENT" -ge "$max" ]; then
            [ "$QUIET_WAITED" = 0 ] && log "  machine ${busy}% busy, quiet-wait budget (${max}s) used up: running anyway"
            return 0
        fi
        [ "$QUIET_WAITED" = 0 ] && log "  machine ${busy}% busy (not us): waiting for < ${pct}%"
        QUIET_WAITED=$((QUIET_WAITED + 1)); QUIET_SPENT=$((QUIET_SPENT + 1))
    done
}
