package query

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// access is how a statement uses a relation.
type access uint8

const (
	accRead access = 1 << iota
	accWrite
)

// scope holds the CTE names visible at a point of the tree; an unqualified
// relation name found in it is a CTE reference, not a relation.
type scope struct {
	names  []string
	parent *scope
}

func (s *scope) has(name string) bool {
	for ; s != nil; s = s.parent {
		for _, n := range s.names {
			if n == name {
				return true
			}
		}
	}
	return false
}

// ctx is the walker's position in the tree.
type ctx struct {
	scope *scope
	// acc is the access given to a relation met here.
	acc access
	// nested is set inside a statement: an INSERT, UPDATE, DELETE or MERGE
	// met there is a data-modifying CTE.
	nested bool
}

// walker collects what one statement's tree holds. It visits every node: the
// nodes that matter are handled by type, all others by walking their message
// fields through protobuf reflection, so no subtree is missed.
type walker struct {
	rels     []located[Relation]
	funcs    []located[Function]
	ops      []string // operator names (schema.op when qualified), each once
	casts    []Type   // types of explicit casts, each once
	runsSQL  bool     // a call that runs SQL given as text (Statement.RunsSQL)
	settings []Setting
	params   int
	// reason is the function, catalog or literal reason met first in the
	// text, at reasonPos.
	reason    string
	reasonPos int32

	selectInto    bool
	dataModifying bool
	locking       bool
	tablesample   bool
}

// located is a finding with the byte offset of its first mention in the
// text; the walk follows the tree, whose order is not the text's (the select
// list comes before FROM), so findings are sorted by offset at the end.
type located[T any] struct {
	v   T
	pos int32
}

// unknownPos stands for a finding without a location: after all others.
const unknownPos = 1<<31 - 1

func position(loc int32) int32 {
	if loc < 0 {
		return unknownPos
	}
	return loc
}

// note records a reason found at loc, keeping the first in the text.
func (w *walker) note(reason string, loc int32) {
	pos := position(loc)
	if w.reason == "" || pos < w.reasonPos {
		w.reason, w.reasonPos = reason, pos
	}
}

// visit dispatches on the concrete node type.
func (w *walker) visit(m proto.Message, c ctx) {
	switch x := m.(type) {
	case *pg_query.Node:
		w.node(x, c)
	case *pg_query.SelectStmt:
		w.selectStmt(x, c)
	case *pg_query.InsertStmt:
		w.insertStmt(x, c)
	case *pg_query.UpdateStmt:
		w.updateStmt(x, c)
	case *pg_query.DeleteStmt:
		w.deleteStmt(x, c)
	case *pg_query.MergeStmt:
		w.mergeStmt(x, c)
	case *pg_query.RangeVar:
		w.rangeVar(x, c)
	case *pg_query.IntoClause:
		w.relation(x.Rel, accWrite)
		w.children(x.ProtoReflect(), c, "rel")
	case *pg_query.FuncCall:
		w.funcCall(x)
		w.children(x.ProtoReflect(), c)
	case *pg_query.SQLValueFunction:
		w.sqlValueFunction(x)
	case *pg_query.ParamRef:
		w.param(x)
	case *pg_query.A_Const:
		w.constant(x)
	case *pg_query.LockingClause:
		// FOR UPDATE OF names range-table entries, which may be aliases:
		// nothing in it is a relation.
		w.locking = true
	case *pg_query.RangeTableSample:
		if x.Repeatable == nil {
			w.tablesample = true
		}
		w.children(x.ProtoReflect(), c)
	case *pg_query.String, *pg_query.Integer, *pg_query.Float, *pg_query.Boolean,
		*pg_query.BitString, *pg_query.ColumnRef, *pg_query.A_Star, *pg_query.Alias,
		*pg_query.TypeName:
		// Leaves: names, constants, aliases and type names hold no
		// relation, call or parameter.
	case nil:
	default:
		w.children(x.ProtoReflect(), c)
	}
}

var nodeOneof = (&pg_query.Node{}).ProtoReflect().Descriptor().Oneofs().Get(0)

// node unwraps a Node. The most frequent expression nodes are walked here
// field by field, which spares the reflection; each case visits every field
// that can hold a node, and skips only names, aliases and type names.
func (w *walker) node(n *pg_query.Node, c ctx) {
	switch x := n.Node.(type) {
	case nil:
	case *pg_query.Node_ColumnRef, *pg_query.Node_String_, *pg_query.Node_Integer,
		*pg_query.Node_Float, *pg_query.Node_Boolean, *pg_query.Node_AStar:
	case *pg_query.Node_AConst:
		w.constant(x.AConst)
	case *pg_query.Node_RangeVar:
		w.rangeVar(x.RangeVar, c)
	case *pg_query.Node_ParamRef:
		w.param(x.ParamRef)
	case *pg_query.Node_ResTarget:
		w.nodes(x.ResTarget.Indirection, c)
		w.optNode(x.ResTarget.Val, c)
	case *pg_query.Node_AExpr:
		w.operator(x.AExpr)
		w.optNode(x.AExpr.Lexpr, c)
		w.optNode(x.AExpr.Rexpr, c)
	case *pg_query.Node_BoolExpr:
		w.nodes(x.BoolExpr.Args, c)
	case *pg_query.Node_TypeCast:
		w.typeCast(x.TypeCast)
		w.optNode(x.TypeCast.Arg, c)
	case *pg_query.Node_NullTest:
		w.optNode(x.NullTest.Arg, c)
	case *pg_query.Node_SubLink:
		w.optNode(x.SubLink.Testexpr, c)
		w.optNode(x.SubLink.Subselect, c)
	case *pg_query.Node_JoinExpr:
		w.optNode(x.JoinExpr.Larg, c)
		w.optNode(x.JoinExpr.Rarg, c)
		w.optNode(x.JoinExpr.Quals, c)
	case *pg_query.Node_SortBy:
		w.optNode(x.SortBy.Node, c)
	case *pg_query.Node_RangeSubselect:
		w.optNode(x.RangeSubselect.Subquery, c)
	case *pg_query.Node_List:
		w.nodes(x.List.Items, c)
	case *pg_query.Node_SelectStmt:
		w.selectStmt(x.SelectStmt, c)
	case *pg_query.Node_FuncCall:
		w.visit(x.FuncCall, c)
	default:
		rm := n.ProtoReflect()
		if fd := rm.WhichOneof(nodeOneof); fd != nil {
			w.visit(rm.Get(fd).Message().Interface(), c)
		}
	}
}

func (w *walker) optNode(n *pg_query.Node, c ctx) {
	if n != nil {
		w.node(n, c)
	}
}

func (w *walker) nodes(ns []*pg_query.Node, c ctx) {
	for _, n := range ns {
		w.node(n, c)
	}
}

// fieldCache maps a message's full name to its message-typed fields.
var fieldCache sync.Map

func messageFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if v, ok := fieldCache.Load(md.FullName()); ok {
		return v.([]protoreflect.FieldDescriptor)
	}
	fds := md.Fields()
	out := make([]protoreflect.FieldDescriptor, 0, fds.Len())
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.Kind() == protoreflect.MessageKind && !fd.IsMap() {
			out = append(out, fd)
		}
	}
	fieldCache.Store(md.FullName(), out)
	return out
}

// children visits the message-typed fields of m in declaration order, except
// those named in skip.
func (w *walker) children(m protoreflect.Message, c ctx, skip ...protoreflect.Name) {
fields:
	for _, fd := range messageFields(m.Descriptor()) {
		for _, s := range skip {
			if fd.Name() == s {
				continue fields
			}
		}
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.visit(l.Get(i).Message().Interface(), c)
			}
			continue
		}
		w.visit(v.Message().Interface(), c)
	}
}

func (w *walker) selectStmt(s *pg_query.SelectStmt, c ctx) {
	c.acc = accRead
	if s.WithClause != nil {
		c.scope = w.with(s.WithClause, c)
	}
	c.nested = true
	if s.IntoClause != nil {
		w.selectInto = true
		w.relation(s.IntoClause.Rel, accWrite)
	}
	if len(s.LockingClause) > 0 {
		w.locking = true
	}
	w.children(s.ProtoReflect(), c, "with_clause", "into_clause", "locking_clause")
}

// with walks the CTE bodies of wc and returns the scope its statement sees. A
// non-recursive CTE sees the CTEs before it (a reference to its own name is a
// relation); with RECURSIVE every CTE sees all of them.
func (w *walker) with(wc *pg_query.WithClause, c ctx) *scope {
	names := make([]string, 0, len(wc.Ctes))
	for _, n := range wc.Ctes {
		names = append(names, n.GetCommonTableExpr().GetCtename())
	}
	all := &scope{names: names, parent: c.scope}
	c.acc, c.nested = accRead, true
	for i, n := range wc.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		cc := c
		if wc.Recursive {
			cc.scope = all
		} else {
			cc.scope = &scope{names: names[:i], parent: c.scope}
		}
		w.visit(cte.Ctequery, cc)
	}
	return all
}

// dml starts an INSERT, UPDATE, DELETE or MERGE: the target is never a CTE
// reference, and the rest is read in the scope of the statement's WITH.
func (w *walker) dml(target *pg_query.RangeVar, acc access, wc *pg_query.WithClause, c ctx) ctx {
	if c.nested {
		w.dataModifying = true
	}
	if wc != nil {
		c.scope = w.with(wc, c)
	}
	w.relation(target, acc)
	c.acc, c.nested = accRead, true
	return c
}

func (w *walker) insertStmt(s *pg_query.InsertStmt, c ctx) {
	c = w.dml(s.Relation, accWrite, s.WithClause, c)
	w.children(s.ProtoReflect(), c, "relation", "with_clause")
}

func (w *walker) updateStmt(s *pg_query.UpdateStmt, c ctx) {
	c = w.dml(s.Relation, accRead|accWrite, s.WithClause, c)
	w.children(s.ProtoReflect(), c, "relation", "with_clause")
}

func (w *walker) deleteStmt(s *pg_query.DeleteStmt, c ctx) {
	c = w.dml(s.Relation, accRead|accWrite, s.WithClause, c)
	w.children(s.ProtoReflect(), c, "relation", "with_clause")
}

func (w *walker) mergeStmt(s *pg_query.MergeStmt, c ctx) {
	c = w.dml(s.Relation, accRead|accWrite, s.WithClause, c)
	w.children(s.ProtoReflect(), c, "relation", "with_clause")
}

// rangeVar handles a relation reference, which may name a CTE in scope.
func (w *walker) rangeVar(rv *pg_query.RangeVar, c ctx) {
	if rv.Schemaname == "" && rv.Catalogname == "" && c.scope.has(rv.Relname) {
		return
	}
	w.relation(rv, c.acc)
}

// relation records a relation that cannot be a CTE reference.
func (w *walker) relation(rv *pg_query.RangeVar, acc access) {
	if rv == nil || rv.Relname == "" {
		return
	}
	w.addRelation(Relation{
		Schema: rv.Schemaname,
		Name:   rv.Relname,
		Read:   acc&accRead != 0,
		Write:  acc&accWrite != 0,
		Only:   !rv.Inh,
		Temp:   rv.Relpersistence == "t",
	}, rv.Location)
}

// addRelation records r, merging it with an earlier mention of the same name.
func (w *walker) addRelation(r Relation, loc int32) {
	if catalogRelation(r.Schema, r.Name) {
		w.note(ReasonSystemCatalog+r.String(), loc)
	} else if tempSchema(r.Schema) {
		w.note(ReasonTempRelation+r.String(), loc)
	}
	pos := position(loc)
	for i := range w.rels {
		e := &w.rels[i]
		if e.v.Schema == r.Schema && e.v.Name == r.Name {
			e.v.Read = e.v.Read || r.Read
			e.v.Write = e.v.Write || r.Write
			e.v.Only = e.v.Only && r.Only
			e.v.Temp = e.v.Temp || r.Temp
			e.pos = min(e.pos, pos)
			return
		}
	}
	w.rels = append(w.rels, located[Relation]{r, pos})
}

func qualify(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

// funcCall decides about one function call.
func (w *walker) funcCall(fc *pg_query.FuncCall) {
	schema, name := funcName(fc.Funcname)
	if name == "" {
		return
	}
	nargs, loc := len(fc.Args), fc.Location
	if name == "set_config" && (schema == "" || schema == "pg_catalog") {
		w.setConfig(fc.Args)
	}
	if nargs == 1 && builtinIn(schema, name, clockInputTypes) && computedText(fc.Args[0]) {
		// date(lower(x)): a function-style cast of a string.
		w.note(ReasonTimeInput+name, loc)
		return
	}
	switch schema {
	case "", "pg_catalog":
		switch builtinKind(name, nargs) {
		case funcSafe:
			return
		case funcVolatile:
			w.note(ReasonVolatileFunction+name, loc)
			return
		case funcRunsSQL:
			w.note(ReasonVolatileFunction+name, loc)
			w.runsSQL = true
			return
		case funcTime:
			w.note(ReasonTimeFunction+name, loc)
			return
		case funcSession:
			w.note(ReasonSessionFunction+name, loc)
			return
		case funcCatalog:
			w.note(ReasonSystemCatalog+name, loc)
			return
		}
	case "information_schema":
		w.note(ReasonSystemCatalog+schema+"."+name, loc)
		return
	}
	w.addFunction(Function{Schema: schema, Name: name, Args: nargs}, loc)
}

// operator records the operator an expression names (x = y, x = ANY (...),
// x IN (...), x LIKE y, x IS DISTINCT FROM y, NULLIF...): a user-defined
// one runs its function, whose volatility the caller must check like a
// function's. BETWEEN names no operator of its own.
func (w *walker) operator(e *pg_query.A_Expr) {
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return
	}
	schema, name := funcName(e.Name)
	if name == "" {
		return
	}
	if schema != "" {
		name = schema + "." + name
	}
	for _, o := range w.ops {
		if o == name {
			return
		}
	}
	w.ops = append(w.ops, name)
}

// regTypes are the object identifier types whose input and output read the
// catalog: 't'::regclass is an OID that DROP and CREATE change, 1234::regclass
// a name that ALTER ... RENAME changes.
var regTypes = map[string]bool{
	"regclass": true, "regcollation": true, "regconfig": true, "regdictionary": true,
	"regnamespace": true, "regoper": true, "regoperator": true, "regproc": true,
	"regprocedure": true, "regrole": true, "regtype": true,
}

// clockInputTypes are the types whose input reads the clock for 'now',
// 'today', 'tomorrow' or 'yesterday' (ranges and multiranges through their
// bounds), as pg_query names them.
var clockInputTypes = map[string]bool{
	"date": true, "timestamp": true, "timestamptz": true, "time": true, "timetz": true,
	"daterange": true, "tsrange": true, "tstzrange": true,
	"datemultirange": true, "tsmultirange": true, "tstzmultirange": true,
}

// textFunctions are builtin functions that return text built from their
// arguments.
var textFunctions = map[string]bool{
	"concat": true, "concat_ws": true, "format": true, "lower": true, "upper": true, "initcap": true,
	"btrim": true, "ltrim": true, "rtrim": true, "substr": true, "substring": true, "replace": true,
	"left": true, "right": true, "lpad": true, "rpad": true, "repeat": true, "reverse": true,
	"translate": true, "regexp_replace": true, "regexp_substr": true, "split_part": true,
	"string_agg": true, "textcat": true, "overlay": true, "chr": true, "to_char": true,
	"array_to_string": true, "quote_ident": true, "normalize": true,
}

// builtinIn reports whether schema.name, unqualified or in pg_catalog, is
// one of set.
func builtinIn(schema, name string, set map[string]bool) bool {
	return (schema == "" || schema == "pg_catalog") && set[name]
}

// builtinNamed is builtinIn for a qualified name list.
func builtinNamed(parts []*pg_query.Node, set map[string]bool) bool {
	schema, name := funcName(parts)
	return builtinIn(schema, name, set)
}

// textTypes are the string types a cast through which keeps a computed
// string a string.
var textTypes = map[string]bool{"text": true, "varchar": true, "bpchar": true, "name": true}

// computedText reports whether n is a string the query computes (a string
// function, ||, a cast of something other than a constant to text), which a
// cast to a date/time type then reads: the server may find 'today' in it.
// A column's value is not judged: its type is not known here.
func computedText(n *pg_query.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AExpr:
		if x.AExpr.Kind == pg_query.A_Expr_Kind_AEXPR_OP {
			_, op := funcName(x.AExpr.Name)
			return op == "||"
		}
	case *pg_query.Node_FuncCall:
		return builtinNamed(x.FuncCall.Funcname, textFunctions)
	case *pg_query.Node_TypeCast:
		arg, tn := x.TypeCast.Arg, x.TypeCast.TypeName
		if tn != nil && builtinNamed(tn.Names, textTypes) && arg.GetAConst() == nil && arg.GetParamRef() == nil {
			return true // x::text of anything but a constant or a parameter
		}
		return computedText(arg)
	case *pg_query.Node_CoalesceExpr:
		return slices.ContainsFunc(x.CoalesceExpr.Args, computedText)
	case *pg_query.Node_CaseExpr:
		for _, w := range x.CaseExpr.Args {
			if cw := w.GetCaseWhen(); cw != nil && computedText(cw.Result) {
				return true
			}
		}
		return x.CaseExpr.Defresult != nil && computedText(x.CaseExpr.Defresult)
	}
	return false
}

// typeCast records the type an explicit cast names.
func (w *walker) typeCast(tc *pg_query.TypeCast) {
	if tc.TypeName == nil {
		return
	}
	schema, name := funcName(tc.TypeName.Names)
	if name == "" {
		return
	}
	if builtinIn(schema, name, regTypes) {
		w.note(ReasonSystemCatalog+name, tc.Location)
		return
	}
	if builtinIn(schema, name, clockInputTypes) && computedText(tc.Arg) {
		w.note(ReasonTimeInput+name, tc.Location)
	}
	t := Type{Schema: schema, Name: name}
	if !slices.Contains(w.casts, t) {
		w.casts = append(w.casts, t)
	}
}

func (w *walker) addFunction(f Function, loc int32) {
	pos := position(loc)
	for i := range w.funcs {
		if e := &w.funcs[i]; e.v == f {
			e.pos = min(e.pos, pos)
			return
		}
	}
	w.funcs = append(w.funcs, located[Function]{f, pos})
}

// funcName splits a function name list into schema and name; a database
// qualifier is dropped.
func funcName(parts []*pg_query.Node) (schema, name string) {
	switch n := len(parts); {
	case n == 0:
		return "", ""
	case n == 1:
		return "", parts[0].GetString_().GetSval()
	default:
		return parts[n-2].GetString_().GetSval(), parts[n-1].GetString_().GetSval()
	}
}

var sqlValueFunctions = map[pg_query.SQLValueFunctionOp]struct {
	name   string
	reason string
}{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:        {"current_date", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME:        {"current_time", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:      {"current_time", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:   {"current_timestamp", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N: {"current_timestamp", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME:           {"localtime", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:         {"localtime", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:      {"localtimestamp", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:    {"localtimestamp", ReasonTimeFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:        {"current_role", ReasonSessionFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:        {"current_user", ReasonSessionFunction},
	pg_query.SQLValueFunctionOp_SVFOP_USER:                {"user", ReasonSessionFunction},
	pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:        {"session_user", ReasonSessionFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:     {"current_catalog", ReasonSessionFunction},
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:      {"current_schema", ReasonSessionFunction},
}

// sqlValueFunction handles CURRENT_TIMESTAMP, CURRENT_USER and the other
// functions the grammar turns into SQLValueFunction nodes: every one depends
// on the clock or the session.
func (w *walker) sqlValueFunction(f *pg_query.SQLValueFunction) {
	if v, ok := sqlValueFunctions[f.Op]; ok {
		w.note(v.reason+v.name, f.Location)
		return
	}
	w.note(ReasonSessionFunction+strings.ToLower(f.Op.String()), f.Location)
}

func (w *walker) param(p *pg_query.ParamRef) {
	if int(p.Number) > w.params {
		w.params = int(p.Number)
	}
}

// constant flags a string constant holding a special date/time input word
// (TimeWord): the server reads the clock for it.
func (w *walker) constant(c *pg_query.A_Const) {
	if s := c.GetSval(); s != nil {
		if v := TimeWord(s.Sval); v != "" {
			w.note(ReasonTimeLiteral+v, c.Location)
		}
	}
}

// constString returns the value of a string, integer, float or boolean
// constant, bare (as in option lists) or in an A_Const, looking through a type
// cast.
func constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	switch v := n.GetNode().(type) {
	case *pg_query.Node_String_:
		return v.String_.Sval, true
	case *pg_query.Node_Integer:
		return strconv.Itoa(int(v.Integer.Ival)), true
	case *pg_query.Node_Float:
		return v.Float.Fval, true
	case *pg_query.Node_Boolean:
		return strconv.FormatBool(v.Boolean.Boolval), true
	case *pg_query.Node_AConst:
		c := v.AConst
		switch cv := c.Val.(type) {
		case *pg_query.A_Const_Sval:
			return cv.Sval.Sval, true
		case *pg_query.A_Const_Ival:
			return strconv.Itoa(int(cv.Ival.Ival)), true
		case *pg_query.A_Const_Fval:
			return cv.Fval.Fval, true
		case *pg_query.A_Const_Boolval:
			return strconv.FormatBool(cv.Boolval.Boolval), true
		}
	}
	return "", false
}

// isTrue reads a boolean as the server accepts it.
func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "y", "yes", "on", "1":
		return true
	}
	return false
}
