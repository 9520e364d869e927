package proxy

import "testing"

func TestMaybeAdminCommand(t *testing.T) {
	for text, want := range map[string]bool{
		"SHOW pgmemo.stats":                              true,
		"  show PGMEMO.last;":                            true,
		"/* a /* nested */ one */ pgmemo invalidate all": true,
		"-- line\nSHOW pgmemo.queries":                   true,
		"SHOW TimeZone":                                  false,
		"SELECT 'SHOW pgmemo.stats'":                     false,
		"/* unterminated SHOW pgmemo.stats":              false,
		"":                                               false,
		"pgmemo":                                         true,
	} {
		if got := maybeAdminCommand([]byte(text)); got != want {
			t.Errorf("maybeAdminCommand(%q) = %v, want %v", text, got, want)
		}
	}
}
