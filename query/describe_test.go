package query

import (
	"fmt"
	"strconv"
	"strings"
)

// describe renders an Analysis as the golden file shows it: one "key: value"
// line per non-empty field, statements of a multi-statement text indented
// below the summary.
func describe(a *Analysis) string {
	var b strings.Builder
	switch {
	case a.Err != nil:
		fmt.Fprintf(&b, "class: %s\n", a.Class)
		fmt.Fprintf(&b, "cacheable: %s\n", cacheable(a.Cacheable, a.Reason))
		fmt.Fprintf(&b, "error: %v\n", a.Err)
	case len(a.Statements) == 1:
		describeStmt(&b, "", a.Statements[0], a.Cacheable, a.Reason)
	default:
		fmt.Fprintf(&b, "class: %s\n", a.Class)
		fmt.Fprintf(&b, "cacheable: %s\n", cacheable(a.Cacheable, a.Reason))
		writeRelations(&b, "", a.Relations)
		writeFunctions(&b, "", a.Functions)
		if a.Params > 0 {
			fmt.Fprintf(&b, "params: %d\n", a.Params)
		}
		for i, st := range a.Statements {
			fmt.Fprintf(&b, "statement %d:\n", i+1)
			describeStmt(&b, "  ", st, st.Cacheable, st.Reason)
		}
	}
	if !a.Hints.IsZero() {
		fmt.Fprintf(&b, "hints: %s\n", describeHints(a.Hints))
	}
	return b.String()
}

func describeStmt(b *strings.Builder, indent string, st *Statement, ok bool, reason string) {
	fmt.Fprintf(b, "%snode: %s\n", indent, st.Node)
	fmt.Fprintf(b, "%sclass: %s\n", indent, st.Class)
	fmt.Fprintf(b, "%scacheable: %s\n", indent, cacheable(ok, reason))
	writeRelations(b, indent, st.Relations)
	writeFunctions(b, indent, st.Functions)
	if st.Params > 0 {
		fmt.Fprintf(b, "%sparams: %d\n", indent, st.Params)
	}
	if st.Tx != nil {
		fmt.Fprintf(b, "%stx: %s\n", indent, describeTx(st.Tx))
	}
	for _, s := range st.Settings {
		fmt.Fprintf(b, "%ssetting: %s\n", indent, describeSetting(s))
	}
	if st.Discard != "" {
		fmt.Fprintf(b, "%sdiscard: %s\n", indent, st.Discard)
	}
	if st.Cascade {
		fmt.Fprintf(b, "%scascade: true\n", indent)
	}
	if st.Name != "" {
		fmt.Fprintf(b, "%sname: %s\n", indent, st.Name)
	}
	if st.Inner != nil {
		fmt.Fprintf(b, "%sinner:\n", indent)
		describeStmt(b, indent+"  ", st.Inner, st.Inner.Cacheable, st.Inner.Reason)
	}
}

func cacheable(ok bool, reason string) string {
	if ok {
		return "yes"
	}
	return "no, " + reason
}

func writeRelations(b *strings.Builder, indent string, rels []Relation) {
	if len(rels) == 0 {
		return
	}
	parts := make([]string, len(rels))
	for i, r := range rels {
		parts[i] = describeRelation(r)
	}
	fmt.Fprintf(b, "%srelations: %s\n", indent, strings.Join(parts, " "))
}

func describeRelation(r Relation) string {
	flags := ""
	if r.Read {
		flags += "r"
	}
	if r.Write {
		flags += "w"
	}
	if r.Only {
		flags += ",only"
	}
	if r.Temp {
		flags += ",temp"
	}
	return r.String() + "(" + flags + ")"
}

func writeFunctions(b *strings.Builder, indent string, fns []Function) {
	if len(fns) == 0 {
		return
	}
	parts := make([]string, len(fns))
	for i, f := range fns {
		parts[i] = f.String()
	}
	fmt.Fprintf(b, "%sfunctions: %s\n", indent, strings.Join(parts, " "))
}

func describeTx(tx *Tx) string {
	parts := []string{tx.Kind.String()}
	add := func(cond bool, s string) {
		if cond {
			parts = append(parts, s)
		}
	}
	add(tx.Isolation != "", "isolation="+strconv.Quote(tx.Isolation))
	add(tx.ReadOnly, "read-only")
	add(tx.ReadWrite, "read-write")
	add(tx.Deferrable, "deferrable")
	add(tx.Chain, "chain")
	add(tx.Savepoint != "", "savepoint="+tx.Savepoint)
	add(tx.GID != "", "gid="+tx.GID)
	add(tx.Snapshot != "", "snapshot="+tx.Snapshot)
	return strings.Join(parts, " ")
}

func describeSetting(s Setting) string {
	name := s.Name
	if name == "" {
		name = "*"
	}
	out := name
	switch {
	case s.Reset:
		out += " reset"
	case s.Dynamic:
		out += "=?"
	default:
		out += "=" + strconv.Quote(s.Value)
	}
	if s.Local {
		out += " local"
	}
	return out
}

func describeHints(h Hints) string {
	var parts []string
	if h.NoCache {
		parts = append(parts, "no-cache")
	}
	if h.TTL > 0 {
		parts = append(parts, "ttl="+h.TTL.String())
	}
	if len(h.Unknown) > 0 {
		parts = append(parts, "unknown="+strings.Join(h.Unknown, ","))
	}
	return strings.Join(parts, " ")
}
