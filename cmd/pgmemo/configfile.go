package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/pgmemo/pgmemo/proxy"
)

// The config file (--config pgmemo.toml) is TOML: the same keys as the flags,
// plus [[rule]] tables. TOML because it is what operators of PgBouncer-like
// daemons edit by hand (flat keys, comments, no indentation traps), and
// BurntSushi/toml is small, dependency-free and strict about types.
//
//	listen = "127.0.0.1:6432"
//	upstream = "postgres://pgmemo@db:5432/postgres"
//	cache-max-bytes = "1GiB"
//	admin-roles = "ops,dba"
//
//	[[rule]]
//	relation = "public.sessions"
//	action = "never"
//
//	[[rule]]
//	fingerprint = "5ec8b2a9d1f1bb4c"
//	action = "cache"
//	ttl = "30s"

// fileConfig is a parsed config file.
type fileConfig struct {
	path   string
	values map[string]string // flag name -> value as a flag would take it
	rules  []proxy.Rule
}

// fileRule is a [[rule]] table.
type fileRule struct {
	Relation    string `toml:"relation"`
	Fingerprint string `toml:"fingerprint"`
	Action      string `toml:"action"`
	TTL         string `toml:"ttl"`
}

// loadConfigFile reads and checks path against the flags of fs: an unknown
// key or a value the flag rejects is an error, naming the key.
func loadConfigFile(path string, fs *flag.FlagSet) (*fileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fc := &fileConfig{path: path, values: map[string]string{}}
	for key, v := range raw {
		if key == "rule" {
			rules, err := decodeRules(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			fc.rules = rules
			continue
		}
		f := fs.Lookup(key)
		if f == nil || key == "config" {
			return nil, fmt.Errorf("%s: unknown key %q (keys are the flags' names, e.g. listen, cache-max-bytes)", path, key)
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int64, float64, bool:
			s = fmt.Sprint(x)
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			s = strings.Join(parts, ",")
		default:
			return nil, fmt.Errorf("%s: %s: unsupported value %v", path, key, v)
		}
		// Check the value on a scratch copy of the flags, so that a bad
		// file changes nothing.
		var scratch config
		sfs := flag.NewFlagSet("check", flag.ContinueOnError)
		sfs.SetOutput(io.Discard)
		scratch.register(sfs)
		if err := sfs.Set(key, s); err != nil {
			return nil, fmt.Errorf("%s: %s = %q: %w", path, key, s, err)
		}
		fc.values[key] = s
	}
	return fc, nil
}

func decodeRules(v any) ([]proxy.Rule, error) {
	tables, ok := v.([]map[string]any)
	if !ok {
		return nil, errors.New("rule must be an array of tables ([[rule]])")
	}
	var rules []proxy.Rule
	for i, t := range tables {
		var fr fileRule
		for k, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("rule %d: %s must be a string", i+1, k)
			}
			switch k {
			case "relation":
				fr.Relation = s
			case "fingerprint":
				fr.Fingerprint = s
			case "action":
				fr.Action = s
			case "ttl":
				fr.TTL = s
			default:
				return nil, fmt.Errorf("rule %d: unknown key %q (relation, fingerprint, action, ttl)", i+1, k)
			}
		}
		r := proxy.Rule{Relation: fr.Relation, Fingerprint: fr.Fingerprint}
		if (r.Relation == "") == (r.Fingerprint == "") {
			return nil, fmt.Errorf("rule %d: give exactly one of relation and fingerprint", i+1)
		}
		switch fr.Action {
		case "never", "no-cache":
			r.Action = proxy.RuleNever
		case "cache", "":
			r.Action = proxy.RuleCache
		case "pin":
			r.Action = proxy.RulePin
		default:
			return nil, fmt.Errorf("rule %d: action %q (never, cache or pin)", i+1, fr.Action)
		}
		if fr.TTL != "" {
			d, err := time.ParseDuration(fr.TTL)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("rule %d: ttl %q is not a positive duration", i+1, fr.TTL)
			}
			if r.Action == proxy.RuleNever {
				return nil, fmt.Errorf("rule %d: a ttl makes no sense with action never", i+1)
			}
			r.TTL = d
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// sourceOf tells where each flag's value came from: flag, env, file or
// default.
type sources map[string]string

// parseAll parses args, then PGMEMO_* environment variables for flags not
// given, then the config file (--config or PGMEMO_CONFIG) for flags still
// unset: flags > env > file > defaults.
func parseAll(fs *flag.FlagSet, args []string, env func(string) string) (sources, *fileConfig, error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	src := sources{}
	fs.Visit(func(f *flag.Flag) { src[f.Name] = "flag" })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if src[f.Name] != "" {
			return
		}
		name := "PGMEMO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
			src[f.Name] = "env"
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var fc *fileConfig
	if cf := fs.Lookup("config"); cf != nil && cf.Value.String() != "" {
		var err error
		if fc, err = loadConfigFile(cf.Value.String(), fs); err != nil {
			return nil, nil, err
		}
		for k, v := range fc.values {
			if src[k] != "" {
				continue
			}
			if err := fs.Set(k, v); err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", fc.path, k, err)
			}
			src[k] = "file"
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if src[f.Name] == "" {
			src[f.Name] = "default"
		}
	})
	return src, fc, nil
}

// configRows lists every flag's effective value and its source, sorted, for
// SHOW pgmemo.config and `pgmemo config print`. Secrets are masked.
func configRows(fs *flag.FlagSet, src sources, rules []proxy.Rule) [][3]string {
	var rows [][3]string
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "upstream" {
			v = maskPassword(v)
		}
		rows = append(rows, [3]string{f.Name, v, src[f.Name]})
	})
	for i, r := range rules {
		what := "relation " + r.Relation
		if r.Fingerprint != "" {
			what = "fingerprint " + r.Fingerprint
		}
		action := "cache"
		switch r.Action {
		case proxy.RuleNever:
			action = "never"
		case proxy.RulePin:
			action = "pin"
		}
		if r.TTL > 0 {
			action += " ttl " + r.TTL.String()
		}
		rows = append(rows, [3]string{fmt.Sprintf("rule.%d", i+1), what + ": " + action, "file"})
	}
	slices.SortStableFunc(rows, func(a, b [3]string) int { return strings.Compare(a[0], b[0]) })
	return rows
}

// maskPassword hides the password of a postgres:// URL or key=value string.
func maskPassword(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return s[:i+3] + rest[:c] + ":*****" + rest[at:]
			}
		}
		return s
	}
	f := strings.Fields(s)
	for i, kv := range f {
		if strings.HasPrefix(kv, "password=") {
			f[i] = "password=*****"
		}
	}
	return strings.Join(f, " ")
}
