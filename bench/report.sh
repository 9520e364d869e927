#!/usr/bin/env bash
# bench/report.sh RESULTS_DIR_OR_CSV - markdown tables from a pgbench-compare.sh results.csv.
#
# One table per workload; one row per (mode, clients, target), in the order they ran.
#   tps        median over repetitions of pgbench's "tps = ... (without initial connection time)"
#   x direct   per repetition pass: target tps / direct tps of the same pass (the targets run
#              interleaved direct, pgmemo, pgbouncer, direct, ...), median [min..max]
#   lat ms     median of pgbench's "latency average"
#   proxy CPU  (utime+stime of the proxy process, /proc/PID/stat, delta over the run) / transactions
#   PG CPU     same for PostgreSQL (postmaster + backends, incl. reaped ones) / transactions
#   other CPU  largest share of the machine's CPU (all cores) used during a repetition by
#              processes outside the benchmark (not pgbench, PostgreSQL or the proxy): noise
#   n          successful repetitions (failed ones are listed)
set -uo pipefail
in=${1:?usage: $0 RESULTS_DIR|results.csv}
[ -d "$in" ] && in=$in/results.csv
[ -s "$in" ] || { echo "no data in $in" >&2; exit 1; }

awk -F, '
function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function mn(s,   a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function mx(s,   a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
function cnt(s,   a) { return split(s, a, " ") }
function fmt_tps(x) { return (x >= 100) ? sprintf("%.0f", x) : sprintf("%.1f", x) }
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{
    wl = $col["workload"]; mode = $col["mode"]; cl = $col["clients"]; rep = $col["rep"]; tg = $col["target"]
    tps = $col["tps"]; rc = $col["rc"]
    if (!(wl in wseen)) { wseen[wl] = 1; wls[++nw] = wl }
    cell = wl SUBSEP mode SUBSEP cl
    if (!(cell in cseen)) { cseen[cell] = 1; ncell[wl]++; cells[wl, ncell[wl]] = cell }
    k = cell SUBSEP tg
    if (!(k in tseen)) { tseen[k] = 1; nt[cell]++; tgs[cell, nt[cell]] = tg }
    if (rc != 0 || tps == "") { bad[k] = bad[k] " " rep; next }
    T[k] = T[k] " " tps; L[k] = L[k] " " $col["lat_ms"]
    if ($col["proxy_us_per_txn"] != "") P[k] = P[k] " " $col["proxy_us_per_txn"]
    if ($col["pg_us_per_txn"] != "") G[k] = G[k] " " $col["pg_us_per_txn"]
    if ($col["other_cpu_pct"] != "") O[k] = O[k] " " $col["other_cpu_pct"]
    byrep[k, rep] = tps; reps[k] = reps[k] " " rep
}
END {
    for (w = 1; w <= nw; w++) {
        wl = wls[w]
        printf "### %s\n\n", wl
        print "| mode | clients | target | tps median | x direct | lat ms | proxy CPU µs/txn | PG CPU µs/txn | other CPU % | n |"
        print "|---|---:|---|---:|---|---:|---:|---:|---:|---|"
        for (c = 1; c <= ncell[wl]; c++) {
            cell = cells[wl, c]; split(cell, p, SUBSEP)
            dk = cell SUBSEP "direct"
            for (j = 1; j <= nt[cell]; j++) {
                tg = tgs[cell, j]; k = cell SUBSEP tg
                failed = (bad[k] != "") ? " (failed:" bad[k] ")" : ""
                if (T[k] == "") { printf "| %s | %s | %s | FAILED | | | | | | 0%s |\n", p[2], p[3], tg, failed; continue }
                rs = ""; nr = split(reps[k], rr, " ")
                for (q = 1; q <= nr; q++) if ((dk, rr[q]) in byrep && byrep[dk, rr[q]] > 0) rs = rs " " byrep[k, rr[q]] / byrep[dk, rr[q]]
                if (tg == "direct") xs = "1"
                else if (rs == "") xs = "-"
                else if (cnt(rs) == 1) xs = sprintf("**%.2f**", med(rs))
                else xs = sprintf("**%.2f** [%.2f..%.2f]", med(rs), mn(rs), mx(rs))
                ps = (tg == "direct" || P[k] == "") ? "-" : sprintf("%.1f", med(P[k]))
                gs = (G[k] == "") ? "-" : sprintf("%.1f", med(G[k]))
                os = (O[k] == "") ? "-" : sprintf("%.0f", mx(O[k]))
                printf "| %s | %s | %s | %s | %s | %.3f | %s | %s | %s | %d%s |\n", p[2], p[3], tg, fmt_tps(med(T[k])), xs, med(L[k]), ps, gs, os, cnt(T[k]), failed
            }
        }
        print ""
    }
}' "$in"
