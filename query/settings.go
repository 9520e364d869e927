package query

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Setting is one setting changed by SET, RESET, SET ROLE, SET SESSION
// AUTHORIZATION, SET TIME ZONE, SET CONSTRAINTS or a set_config call.
type Setting struct {
	// Name is the setting's name, lower case, as the server knows it
	// ("search_path", "timezone", "role", "session_authorization",
	// "client_encoding", "constraints"...). Empty for RESET ALL, and for a
	// set_config call whose name is not a constant: then any setting may
	// have changed.
	Name string
	// Value is the new value as the server would show it, list elements
	// joined by ", " (identifiers quoted where search_path needs it); empty
	// when Reset or Dynamic is set.
	Value string
	// Dynamic reports a set_config call whose setting name or value is not
	// a constant (a $n parameter or an expression): the new value, or with
	// an empty Name the setting itself, is unknown.
	Dynamic bool
	// Local reports SET LOCAL (or set_config(..., true)): the change ends
	// with the transaction.
	Local bool
	// Reset reports RESET, RESET ALL and SET ... TO DEFAULT: the setting
	// returns to its session default.
	Reset bool
}

// listSettings are the settings whose list elements the server quotes as
// identifiers (GUC_LIST_QUOTE).
var listSettings = map[string]bool{
	"search_path":               true,
	"temp_tablespaces":          true,
	"session_preload_libraries": true,
	"local_preload_libraries":   true,
	"shared_preload_libraries":  true,
}

func variableSet(s *pg_query.VariableSetStmt) Setting {
	set := Setting{Name: strings.ToLower(s.Name), Local: s.IsLocal}
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET,
		pg_query.VariableSetKind_VAR_RESET_ALL:
		set.Reset = true
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		vals := make([]string, 0, len(s.Args))
		for _, a := range s.Args {
			v, ok := constString(a)
			if !ok {
				return set
			}
			if listSettings[set.Name] && a.GetAConst().GetSval() != nil {
				v = quoteIdent(v)
			}
			vals = append(vals, v)
		}
		set.Value = strings.Join(vals, ", ")
	}
	return set
}

// setConfig records set_config(name, value, is_local).
func (w *walker) setConfig(args []*pg_query.Node) {
	s := Setting{Dynamic: true}
	if len(args) > 0 {
		if v, ok := constString(args[0]); ok {
			s.Name = strings.ToLower(v)
			s.Dynamic = false
		}
	}
	if len(args) > 1 && !s.Dynamic {
		v, ok := constString(args[1])
		s.Value, s.Dynamic = v, !ok
	}
	if len(args) > 2 {
		// When not a constant, assume the change outlives the transaction.
		v, _ := constString(args[2])
		s.Local = isTrue(v)
	}
	w.settings = append(w.settings, s)
}

func constraintsSet(s *pg_query.ConstraintsSetStmt) Setting {
	var b strings.Builder
	if len(s.Constraints) == 0 {
		b.WriteString("ALL")
	}
	for i, c := range s.Constraints {
		if i > 0 {
			b.WriteString(", ")
		}
		rv := c.GetRangeVar()
		b.WriteString(qualify(rv.GetSchemaname(), rv.GetRelname()))
	}
	if s.Deferred {
		b.WriteString(" DEFERRED")
	} else {
		b.WriteString(" IMMEDIATE")
	}
	return Setting{Name: "constraints", Value: b.String(), Local: true}
}

// quoteIdent quotes an identifier unless it is a plain lower-case one, close
// to what the server does for search_path.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
