package main

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The tests call run in this process: keep it from changing the test binary's
// GOMAXPROCS (TestThreadsFlag checks a real pgmemo process instead).
func init() { setThreads = func(int) int { return runtime.GOMAXPROCS(0) } }

func TestThreadCount(t *testing.T) {
	tests := []struct {
		flag, env string
		avail     int
		want      int
	}{
		{"auto", "", 2, 1},
		{"auto", "", 1, 1},
		{"auto", "", 16, 8},
		{"auto", "", 3, 1},
		{"auto", "4", 4, 4}, // GOMAXPROCS=4 in the environment: the runtime's value stays
		{"3", "", 2, 3},
		{"3", "8", 8, 3}, // the flag wins over the environment
	}
	for _, tt := range tests {
		if got := threadCount(tt.flag, tt.env, tt.avail); got != tt.want {
			t.Errorf("threadCount(%q, GOMAXPROCS=%q, avail %d) = %d; want %d", tt.flag, tt.env, tt.avail, got, tt.want)
		}
	}
	for _, bad := range []string{"0", "-1", "two", ""} {
		if _, err := parseThreads(bad); err == nil || !strings.Contains(err.Error(), "--threads") {
			t.Errorf("parseThreads(%q) = %v; want an error naming --threads", bad, err)
		}
	}
}

// TestThreadsFlag starts the pgmemo binary and reads the thread count it
// reports when it starts listening: --threads 3 gives 3, and the default (auto)
// half of what the runtime would use.
func TestThreadsFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts pgmemo")
	}
	up := cluster.URL("", "", "")
	auto := threadCount("auto", "", runtime.GOMAXPROCS(0))
	for _, tt := range []struct {
		args []string
		env  string
		want int
	}{
		{[]string{"--threads", "3", "--invalidation", "off", "--http-listen", "off"}, "", 3},
		{[]string{"--invalidation", "off", "--http-listen", "off"}, "", auto},
		{[]string{"--invalidation", "off", "--http-listen", "off"}, "5", 5},
	} {
		t.Setenv("GOMAXPROCS", tt.env)
		p := startPgmemo(t, up, tt.args...)
		if !strings.Contains(p.listen+" ", " threads="+strconv.Itoa(tt.want)+" ") {
			t.Errorf("%v GOMAXPROCS=%q: %q; want threads=%d", tt.args, tt.env, p.listen, tt.want)
		}
	}
}
