package query

// TimeWord returns the special date/time input word that s contains, "now",
// "today", "tomorrow" or "yesterday", in any case, or "" when it holds none.
// The server's date/time input reads the clock for each of them, alone or
// within a longer value: 'today 10:00', '10:00today', 'yesterday allballs',
// '[today,tomorrow)' for a range, '{today}' for an array. A word counts when
// it is a whole run of ASCII letters, as the server's date/time parser splits
// its input ('nowhere' and 'todays' are not words); s may be a string
// constant, a parameter value, or a Bind message's whole parameter section.
func TimeWord[T string | []byte](s T) string {
	for i := 0; i < len(s); {
		if !isLetter(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if n := j - i; n >= 3 && n <= 9 {
			if w := timeWord(s[i:j]); w != "" {
				return w
			}
		}
		i = j
	}
	return ""
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func timeWord[T string | []byte](run T) string {
	for _, w := range [...]string{"now", "today", "tomorrow", "yesterday"} {
		if len(run) != len(w) {
			continue
		}
		same := true
		for k := 0; k < len(w); k++ {
			if run[k]|0x20 != w[k] {
				same = false
				break
			}
		}
		if same {
			return w
		}
	}
	return ""
}
