package query

import (
	"strconv"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

var benchQueries = []struct{ name, sql string }{
	{"pgbench", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"},
	{"django", `SELECT "blog_entry"."id", "blog_entry"."headline", "blog_entry"."pub_date" FROM "blog_entry" INNER JOIN "blog_blog" ON ("blog_entry"."blog_id" = "blog_blog"."id") WHERE ("blog_blog"."name" = $1 AND "blog_entry"."rating" >= $2) ORDER BY "blog_entry"."pub_date" DESC LIMIT 10 OFFSET 20`},
	{"tpch-q20", `SELECT s_name, s_address FROM supplier, nation
WHERE s_suppkey IN (
    SELECT ps_suppkey FROM partsupp
    WHERE ps_partkey IN (SELECT p_partkey FROM part WHERE p_name LIKE 'forest%')
      AND ps_availqty > (SELECT 0.5 * sum(l_quantity) FROM lineitem
                         WHERE l_partkey = ps_partkey AND l_suppkey = ps_suppkey
                           AND l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01'))
  AND s_nationkey = n_nationkey AND n_name = 'CANADA'
ORDER BY s_name`},
}

// BenchmarkAnalyze is the uncached path: parse, walk, fingerprint, normalize.
func BenchmarkAnalyze(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Analyze(q.sql)
			}
		})
	}
}

// BenchmarkAnalyzerCached is the hot path: the text is in the cache.
func BenchmarkAnalyzerCached(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			an := NewAnalyzer(Config{})
			an.Analyze(q.sql)
			b.ReportAllocs()
			for b.Loop() {
				an.Analyze(q.sql)
			}
		})
	}
}

// BenchmarkAnalyzerCachedParallel measures the shared cache under contention.
func BenchmarkAnalyzerCachedParallel(b *testing.B) {
	an := NewAnalyzer(Config{})
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i)
		an.Analyze(texts[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			an.Analyze(texts[i%len(texts)])
			i++
		}
	})
}

// BenchmarkAnalyzerMiss is an Analyzer whose cache never hits: the
// uncached cost plus the cache's bookkeeping.
func BenchmarkAnalyzerMiss(b *testing.B) {
	an := NewAnalyzer(Config{CacheSize: 1000})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		an.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i))
		i++
	}
}

// BenchmarkParts splits the uncached cost of the django query into its
// pg_query calls and the walk.
func BenchmarkParts(b *testing.B) {
	sql := benchQueries[1].sql
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := pg_query.Parse(sql); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			analyzeStmt(tree.Stmts[0].Stmt)
		}
	})
	b.Run("fingerprint", func(b *testing.B) {
		for b.Loop() {
			if _, err := pg_query.Fingerprint(sql); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("normalize", func(b *testing.B) {
		for b.Loop() {
			if _, err := pg_query.Normalize(sql); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hints-scan", func(b *testing.B) {
		s := sql + " /* pgmemo:ttl=5s */"
		for b.Loop() {
			parseHints(s)
		}
	})
}
