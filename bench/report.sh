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
#   hit %      caching targets: cache hits / (hits + misses) over the run, from the target's own
#              counters (pgmemo-cache: SHOW pgmemo.stats, pgpool: SHOW POOL_CACHE), median
#   n          successful repetitions (failed ones are listed)
# Then a compact table per workload: x direct of every target side by side, and the
# per-pass ratio PAIR_A / PAIR_B for each pair in REPORT_PAIRS (default
# "pgmemo-cache/pgpool", shown when both ran).
set -uo pipefail
in=${1:?usage: $0 RESULTS_DIR|results.csv}
[ -d "$in" ] && in=$in/results.csv
[ -s "$in" ] || { echo "no data in $in" >&2; exit 1; }

awk -F, -v pairs="${REPORT_PAIRS:-pgmemo-cache/pgpool}" '
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
function get(name) { return (name in col) ? $col[name] : "" }
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
    if (get("hit_pct") != "") H[k] = H[k] " " get("hit_pct")
    if (!(tg in tgseen)) { tgseen[tg] = 1; alltg[++ntg] = tg }
    byrep[k, rep] = tps; reps[k] = reps[k] " " rep
}
END {
    for (w = 1; w <= nw; w++) {
        wl = wls[w]
        printf "### %s\n\n", wl
        print "| mode | clients | target | tps median | x direct | lat ms | proxy CPU µs/txn | hit % | PG CPU µs/txn | other CPU % | n |"
        print "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---|"
        for (c = 1; c <= ncell[wl]; c++) {
            cell = cells[wl, c]; split(cell, p, SUBSEP)
            dk = cell SUBSEP "direct"
            for (j = 1; j <= nt[cell]; j++) {
                tg = tgs[cell, j]; k = cell SUBSEP tg
                failed = (bad[k] != "") ? " (failed:" bad[k] ")" : ""
                if (T[k] == "") { printf "| %s | %s | %s | FAILED | | | | | | | 0%s |\n", p[2], p[3], tg, failed; continue }
                rs = ""; nr = split(reps[k], rr, " ")
                for (q = 1; q <= nr; q++) if ((dk, rr[q]) in byrep && byrep[dk, rr[q]] > 0) rs = rs " " byrep[k, rr[q]] / byrep[dk, rr[q]]
                if (tg == "direct") xs = "1"
                else if (rs == "") xs = "-"
                else if (cnt(rs) == 1) xs = sprintf("**%.2f**", med(rs))
                else xs = sprintf("**%.2f** [%.2f..%.2f]", med(rs), mn(rs), mx(rs))
                ps = (tg == "direct" || P[k] == "") ? "-" : sprintf("%.1f", med(P[k]))
                gs = (G[k] == "") ? "-" : sprintf("%.1f", med(G[k]))
                os = (O[k] == "") ? "-" : sprintf("%.0f", mx(O[k]))
                hs = (H[k] == "") ? "-" : (cnt(H[k]) == 1 ? sprintf("%.1f", med(H[k])) : sprintf("%.1f [%.1f..%.1f]", med(H[k]), mn(H[k]), mx(H[k])))
                printf "| %s | %s | %s | %s | %s | %.3f | %s | %s | %s | %s | %d%s |\n", p[2], p[3], tg, fmt_tps(med(T[k])), xs, med(L[k]), ps, hs, gs, os, cnt(T[k]), failed
            }
        }
        print ""
    }
    # compact view: x direct (median of per-pass ratios) of every target, and the pairs
    np = split(pairs, pr, " "); npair = 0
    for (q = 1; q <= np; q++) {
        if (split(pr[q], ab, "/") != 2 || !(ab[1] in tgseen) || !(ab[2] in tgseen)) continue
        npair++; pa[npair] = ab[1]; pb[npair] = ab[2]
    }
    print "### x direct, all workloads (median of per-pass ratios)"
    print ""
    hdr = "| workload | mode | clients | direct tps |"; sep = "|---|---|---:|---:|"
    for (j = 1; j <= ntg; j++) if (alltg[j] != "direct") { hdr = hdr " " alltg[j] " |"; sep = sep "---:|" }
    for (q = 1; q <= npair; q++) { hdr = hdr " " pa[q] " / " pb[q] " |"; sep = sep "---:|" }
    print hdr; print sep
    for (w = 1; w <= nw; w++) {
        wl = wls[w]
        for (c = 1; c <= ncell[wl]; c++) {
            cell = cells[wl, c]; split(cell, p, SUBSEP)
            dk = cell SUBSEP "direct"
            line = sprintf("| %s | %s | %s | %s |", wl, p[2], p[3], (T[dk] == "") ? "-" : fmt_tps(med(T[dk])))
            for (j = 1; j <= ntg; j++) {
                tg = alltg[j]; if (tg == "direct") continue
                line = line " " ratio(cell SUBSEP tg, dk) " |"
            }
            for (q = 1; q <= npair; q++) line = line " " ratio(cell SUBSEP pa[q], cell SUBSEP pb[q]) " |"
            print line
        }
    }
    print ""
}
# ratio(K, BASE): median over the passes both ran of tps[K] / tps[BASE], "-" if none
function ratio(k, b,   rs, nr, rr, q) {
    rs = ""; nr = split(reps[k], rr, " ")
    for (q = 1; q <= nr; q++) if ((b, rr[q]) in byrep && byrep[b, rr[q]] > 0) rs = rs " " byrep[k, rr[q]] / byrep[b, rr[q]]
    return (rs == "") ? "-" : sprintf("%.2f", med(rs))
}' "$in"
