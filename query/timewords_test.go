package query

import "testing"

func TestTimeWord(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"now", "now"},
		{"  NOW ", "now"},
		{"today 10:00", "today"},
		{"10:00today", "today"},
		{"tomorrow 14:00 America/New_York", "tomorrow"},
		{"yesterday allballs", "yesterday"},
		{"[today,tomorrow)", "today"},
		{"{2020-01-01,Tomorrow}", "tomorrow"},
		{"today_", "today"},
		{"\x00\x00\x00\x05today\x00\x00", "today"}, // a Bind's parameter section
		{"nowhere", ""},
		{"todays", ""},
		{"snow", ""},
		{"2026-12-02 10:00:00+00", ""},
		{"epoch", ""},
		{"infinity", ""},
		{"12345", ""},
		{"", ""},
	} {
		if got := TimeWord(tt.in); got != tt.want {
			t.Errorf("TimeWord(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := TimeWord([]byte(tt.in)); got != tt.want {
			t.Errorf("TimeWord([]byte(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkTimeWordDigits(b *testing.B) {
	tail := []byte("\x00\x00\x00\x01\x00\x00\x00\x06423017\x00\x00")
	for b.Loop() {
		if TimeWord(tail) != "" {
			b.Fatal("found a word")
		}
	}
}
