package query

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Analyze analyzes sql without caching; see Analyzer for the cached form. It
// never fails: text that does not parse yields an Analysis of Class Unknown
// whose Err is a *ParseError. As the server does, it parses the whole text
// before looking at any statement, so one bad statement makes the whole
// multi-statement text Unknown. The Analysis refers to sql (Statement.Text is
// a substring of it).
func Analyze(sql string) *Analysis {
	a := &Analysis{Hints: parseHints(sql)}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		a.Class = Unknown
		a.Reason = ReasonParseError
		a.Err = newParseError(err)
		return a
	}
	if len(tree.Stmts) == 0 {
		a.Class = Empty
		a.Reason = ReasonEmpty
		return a
	}
	a.Statements = make([]*Statement, 0, len(tree.Stmts))
	for _, raw := range tree.Stmts {
		st := analyzeStmt(raw.Stmt)
		st.Text = stmtText(sql, raw)
		st.Fingerprint, st.Normalized = fingerprint(st.Text)
		a.add(st)
	}
	if len(a.Statements) == 1 {
		st := a.Statements[0]
		a.Fingerprint, a.Normalized = st.Fingerprint, st.Normalized
		a.Cacheable, a.Reason = st.Cacheable, st.Reason
		if a.Cacheable && a.Hints.NoCache {
			a.Cacheable, a.Reason = false, ReasonNoCacheHint
		}
		return a
	}
	a.Fingerprint, a.Normalized = fingerprint(sql)
	a.Reason = ReasonMultiStatement
	return a
}

// add appends st and folds it into the summary.
func (a *Analysis) add(st *Statement) {
	if len(a.Statements) == 0 || st.Class.weight() > a.Class.weight() {
		a.Class = st.Class
	}
	a.Statements = append(a.Statements, st)
	if st.Params > a.Params {
		a.Params = st.Params
	}
	if len(a.Statements) == 1 {
		a.Relations, a.Functions = st.Relations, st.Functions
		return
	}
	if len(a.Statements) == 2 {
		// Copy before merging: the first statement keeps its own slices.
		a.Relations = append([]Relation(nil), a.Relations...)
		a.Functions = append([]Function(nil), a.Functions...)
	}
	for _, r := range st.Relations {
		a.Relations = mergeRelation(a.Relations, r)
	}
	for _, f := range st.Functions {
		found := false
		for _, g := range a.Functions {
			if g == f {
				found = true
				break
			}
		}
		if !found {
			a.Functions = append(a.Functions, f)
		}
	}
}

func mergeRelation(rels []Relation, r Relation) []Relation {
	for i := range rels {
		if rels[i].Schema == r.Schema && rels[i].Name == r.Name {
			rels[i].Read = rels[i].Read || r.Read
			rels[i].Write = rels[i].Write || r.Write
			rels[i].Only = rels[i].Only && r.Only
			rels[i].Temp = rels[i].Temp || r.Temp
			return rels
		}
	}
	return append(rels, r)
}

// stmtText cuts a statement out of sql. The parser gives byte offsets; a
// length of 0 means "to the end".
func stmtText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.StmtLocation)
	if start < 0 || start > len(sql) {
		return ""
	}
	end := len(sql)
	if raw.StmtLen > 0 && start+int(raw.StmtLen) <= len(sql) {
		end = start + int(raw.StmtLen)
	}
	return strings.TrimSpace(sql[start:end])
}

// fingerprint returns pg_query's fingerprint and normalized text of sql, or
// empty strings when it cannot (it parses sql again, in C).
func fingerprint(sql string) (fp, normalized string) {
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		return "", ""
	}
	normalized, err = pg_query.Normalize(sql)
	if err != nil {
		normalized = ""
	}
	return fp, normalized
}
