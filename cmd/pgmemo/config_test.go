package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		listen   string
		upstream string
		timeout  time.Duration
	}{
		{name: "defaults", listen: "127.0.0.1:6432", timeout: 30 * time.Second},
		{name: "env fills flags", env: map[string]string{"PGMEMO_UPSTREAM": "postgres://db:5432/x", "PGMEMO_SHUTDOWN_TIMEOUT": "5s"},
			listen: "127.0.0.1:6432", upstream: "postgres://db:5432/x", timeout: 5 * time.Second},
		{name: "flag beats env", args: []string{"--listen", "0.0.0.0:7000"}, env: map[string]string{"PGMEMO_LISTEN": "127.0.0.1:9"},
			listen: "0.0.0.0:7000", timeout: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			c.register(fs)
			if err := parseFlags(fs, tt.args, func(k string) string { return tt.env[k] }); err != nil {
				t.Fatal(err)
			}
			if c.listen != tt.listen || c.upstream != tt.upstream || c.shutdownTimeout != tt.timeout {
				t.Errorf("got listen=%q upstream=%q timeout=%v", c.listen, c.upstream, c.shutdownTimeout)
			}
		})
	}
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	var c config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.register(fs)
	err := parseFlags(fs, nil, func(k string) string {
		if k == "PGMEMO_SHUTDOWN_TIMEOUT" {
			return "soon"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "PGMEMO_SHUTDOWN_TIMEOUT") {
		t.Fatalf("err = %v, want one naming PGMEMO_SHUTDOWN_TIMEOUT", err)
	}
}

func TestInvalidValuesFailWithAClearMessage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-level", "loud"}, "allowed values are debug, info, warn, error"},
		{[]string{"--log-format", "xml"}, "allowed values are text, json"},
		{[]string{"--threads", "0"}, `--threads "0": a positive number or auto`},
		{[]string{"--upstream", "postgres://x/y", "--access-check-interval", "0s"}, "--access-check-interval must be positive"},
		{[]string{"--tls-cert", "a.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--upstream", "postgres://x/y", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, "loading --tls-cert/--tls-key"},
		{nil, "--upstream (or PGMEMO_UPSTREAM) is required"},
		{[]string{"frobnicate"}, "usage"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv("PGMEMO_UPSTREAM", "")
			var out, errw bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errw)
			if err == nil || !strings.Contains(err.Error()+errw.String(), tt.want) {
				t.Fatalf("err = %v, stderr %q; want it to mention %q", err, errw.String(), tt.want)
			}
		})
	}
}

func TestHelpListsCommandsAndFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pgmemo demo", "-upstream", "-listen", "PGMEMO_UPSTREAM", "-shutdown-timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help output lacks %q", want)
		}
	}
}
