package proxy

import "testing"

func TestShapeOf(t *testing.T) {
	tests := []struct {
		text, shape string
		ok          bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 4271;", "SELECT abalance FROM pgbench_accounts WHERE aid = ?;", true},
		{"SELECT * FROM t WHERE a = 'x''y' AND b IN (1, 2.5, .5, 1e-3, 0x1F)", "SELECT * FROM t WHERE a = '?' AND b IN (?, ?, ?, ?, ?)", true},
		{"SELECT t1.c2 FROM t1 WHERE c3 = $1", "SELECT t1.c2 FROM t1 WHERE c3 = $1", true},
		{`SELECT "col 1" FROM "T'x" WHERE x = 'a'`, `SELECT "col 1" FROM "T'x" WHERE x = '?'`, true},
		{"SELECT 1 -- a 'comment' 2\n, 3", "SELECT ? -- a 'comment' 2\n, ?", true},
		{"/* pgmemo:ttl=30s */ SELECT x FROM t WHERE id = 5", "/* pgmemo:ttl=30s */ SELECT x FROM t WHERE id = ?", true},
		{"SELECT '5'::int4, x::numeric(10,2) FROM t", "SELECT '?'::int4, x::numeric(?,?) FROM t", true},
		{"SELECT 'now'::timestamptz", "", false},
		{"SELECT ' Today '::date", "", false},
		{"SELECT * FROM t WHERE ts >= 'tomorrow 14:00'", "", false},
		{"SELECT * FROM t WHERE name = 'nowhere'", "SELECT * FROM t WHERE name = '?'", true},
		{"SELECT E'a\\'b'", "", false},
		{"SELECT 'a\\b'", "", false},
		{"SELECT $$x$$", "", false},
		{"SELECT $tag$x$tag$", "", false},
		{"SELECT x'1F'", "", false},
		{"SELECT U&'d\\0061t'", "", false},
		{"SELECT 'unterminated", "", false},
		{"SELECT /* unterminated", "", false},
		{"SELECT a FROM t", "SELECT a FROM t", true},
	}
	for _, tt := range tests {
		shape, ok := shapeOf(tt.text)
		if ok != tt.ok || ok && shape != tt.shape {
			t.Errorf("shapeOf(%q) = %q, %v; want %q, %v", tt.text, shape, ok, tt.shape, tt.ok)
		}
	}
}

func FuzzShapeOf(f *testing.F) {
	f.Add("SELECT * FROM t WHERE a = 'x''y' AND b = 1.5e3")
	f.Add("SELECT $1, $$x$$, E'\\n', \"q\"\"q\" /* c /* n */ */ -- x")
	f.Fuzz(func(t *testing.T, text string) {
		shape, ok := shapeOf(text)
		if !ok {
			return
		}
		// Shaping is idempotent, and texts without literals are their own
		// shape.
		again, ok := shapeOf(shape)
		if !ok || again != shape {
			t.Fatalf("shapeOf(%q) = %q, then %q, %v", text, shape, again, ok)
		}
	})
}
