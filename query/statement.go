package query

import (
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// nodeClasses classifies the statements that need no special handling: their
// trees are walked as they are, relations met outside a query counting as
// written for DDL and Grant, as read for SideEffects. Statement nodes not
// listed here nor in analyzeStmt's switch are SideEffects.
var nodeClasses = map[string]Class{
	// DDL.
	"AlterCollationStmt": DDL, "AlterDatabaseRefreshCollStmt": DDL, "AlterDatabaseSetStmt": DDL,
	"AlterDatabaseStmt": DDL, "AlterDomainStmt": DDL, "AlterEnumStmt": DDL,
	"AlterEventTrigStmt": DDL, "AlterExtensionContentsStmt": DDL, "AlterExtensionStmt": DDL,
	"AlterFdwStmt": DDL, "AlterForeignServerStmt": DDL, "AlterFunctionStmt": DDL,
	"AlterObjectDependsStmt": DDL, "AlterOpFamilyStmt": DDL, "AlterOperatorStmt": DDL,
	"AlterOwnerStmt": DDL, "AlterPolicyStmt": DDL, "AlterPublicationStmt": DDL,
	"AlterSeqStmt": DDL, "AlterStatsStmt": DDL, "AlterSubscriptionStmt": DDL,
	"AlterSystemStmt": DDL, "AlterTSConfigurationStmt": DDL, "AlterTSDictionaryStmt": DDL,
	"AlterTableMoveAllStmt": DDL, "AlterTableSpaceOptionsStmt": DDL, "AlterTableStmt": DDL,
	"AlterTypeStmt": DDL, "AlterUserMappingStmt": DDL, "CompositeTypeStmt": DDL,
	"CreateAmStmt": DDL, "CreateCastStmt": DDL, "CreateConversionStmt": DDL,
	"CreateDomainStmt": DDL, "CreateEnumStmt": DDL, "CreateEventTrigStmt": DDL,
	"CreateExtensionStmt": DDL, "CreateFdwStmt": DDL, "CreateForeignServerStmt": DDL,
	"CreateForeignTableStmt": DDL, "CreateFunctionStmt": DDL, "CreateOpClassStmt": DDL,
	"CreateOpFamilyStmt": DDL, "CreatePLangStmt": DDL, "CreatePolicyStmt": DDL,
	"CreatePublicationStmt": DDL, "CreateRangeStmt": DDL, "CreateSchemaStmt": DDL,
	"CreateSeqStmt": DDL, "CreateStatsStmt": DDL, "CreateStmt": DDL,
	"CreateSubscriptionStmt": DDL, "CreateTableSpaceStmt": DDL, "CreateTransformStmt": DDL,
	"CreateTrigStmt": DDL, "CreateUserMappingStmt": DDL, "CreatedbStmt": DDL,
	"DefineStmt": DDL, "DropOwnedStmt": DDL, "DropSubscriptionStmt": DDL,
	"DropTableSpaceStmt": DDL, "DropUserMappingStmt": DDL, "DropdbStmt": DDL,
	"ImportForeignSchemaStmt": DDL, "IndexStmt": DDL, "ReassignOwnedStmt": DDL,
	"RuleStmt": DDL, "SecLabelStmt": DDL, "ViewStmt": DDL,

	// Privileges and roles.
	"GrantStmt": Grant, "GrantRoleStmt": Grant, "AlterDefaultPrivilegesStmt": Grant,
	"CreateRoleStmt": Grant, "AlterRoleStmt": Grant, "AlterRoleSetStmt": Grant,
	"DropRoleStmt": Grant,

	// Effects the proxy cannot see, or that must reach the server.
	"CallStmt": SideEffects, "DoStmt": SideEffects, "LockStmt": SideEffects,
	"VacuumStmt": SideEffects, "ClusterStmt": SideEffects, "ReindexStmt": SideEffects,
	"CheckPointStmt": SideEffects, "LoadStmt": SideEffects,
}

// relationObjects are the object types whose names are relations.
var relationObjects = map[pg_query.ObjectType]bool{
	pg_query.ObjectType_OBJECT_TABLE:         true,
	pg_query.ObjectType_OBJECT_VIEW:          true,
	pg_query.ObjectType_OBJECT_MATVIEW:       true,
	pg_query.ObjectType_OBJECT_INDEX:         true,
	pg_query.ObjectType_OBJECT_SEQUENCE:      true,
	pg_query.ObjectType_OBJECT_FOREIGN_TABLE: true,
}

// analyzeStmt analyzes one statement's tree. Text, Fingerprint and Normalized
// are left for the caller.
func analyzeStmt(n *pg_query.Node) *Statement {
	st := &Statement{}
	w := &walker{}
	m := unwrapNode(n)
	if m == nil {
		st.Class = SideEffects
		st.Reason = ReasonNotARead
		return st
	}
	st.Node = string(m.ProtoReflect().Descriptor().Name())
	write := ctx{acc: accWrite}
	read := ctx{acc: accRead}

	switch x := m.(type) {
	case *pg_query.SelectStmt:
		st.Class = Read
		w.selectStmt(x, read)
		if w.selectInto || w.dataModifying {
			st.Class = Write
		}

	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt,
		*pg_query.TruncateStmt, *pg_query.RefreshMatViewStmt, *pg_query.CreateTableAsStmt:
		st.Class = Write
		w.visit(x, write)
		if t, ok := x.(*pg_query.TruncateStmt); ok && t.Behavior == pg_query.DropBehavior_DROP_CASCADE {
			st.Cascade = true
		}

	case *pg_query.CopyStmt:
		switch {
		case x.IsFrom:
			st.Class = Write
			w.relation(x.Relation, accWrite)
			w.children(x.ProtoReflect(), read, "relation")
		case x.Query != nil:
			st.Inner = analyzeStmt(x.Query)
			st.Class = SideEffects
			if st.Inner.Class == Write {
				st.Class = Write
			}
			w.absorb(st.Inner, true)
		default:
			st.Class = SideEffects
			w.visit(x, read)
		}

	case *pg_query.ExplainStmt:
		st.Inner = analyzeStmt(x.Query)
		st.Class = SideEffects
		if explainAnalyze(x.Options) {
			// EXPLAIN ANALYZE runs the statement.
			if st.Inner.Class == Write {
				st.Class = Write
			}
			w.absorb(st.Inner, true)
		} else {
			w.absorb(st.Inner, false)
		}

	case *pg_query.PrepareStmt:
		// The statement is not run; its $n are PREPARE's own parameters.
		st.Class = SideEffects
		st.Name = x.Name
		st.Inner = analyzeStmt(x.Query)

	case *pg_query.DeclareCursorStmt:
		st.Class = SideEffects
		st.Name = x.Portalname
		st.Inner = analyzeStmt(x.Query)
		w.absorb(st.Inner, true)

	case *pg_query.ExecuteStmt:
		st.Class = SideEffects
		st.Name = x.Name
		w.visit(x, read)

	case *pg_query.DeallocateStmt:
		st.Class = SideEffects
		st.Name = orAll(x.Name, x.Isall)

	case *pg_query.FetchStmt:
		st.Class = SideEffects
		st.Name = x.Portalname

	case *pg_query.ClosePortalStmt:
		st.Class = SideEffects
		st.Name = orAll(x.Portalname, x.Portalname == "")

	case *pg_query.ListenStmt:
		st.Class = SideEffects
		st.Name = x.Conditionname

	case *pg_query.UnlistenStmt:
		st.Class = SideEffects
		st.Name = orAll(x.Conditionname, x.Conditionname == "")

	case *pg_query.NotifyStmt:
		st.Class = SideEffects
		st.Name = x.Conditionname

	case *pg_query.VariableShowStmt:
		st.Class = SideEffects
		st.Name = x.Name

	case *pg_query.TransactionStmt:
		st.Class = TxControl
		st.Tx = transactionStmt(x)

	case *pg_query.VariableSetStmt:
		if tx := setTransaction(x); tx != nil {
			st.Class = TxControl
			st.Tx = tx
			break
		}
		st.Class = Session
		w.settings = append(w.settings, variableSet(x))

	case *pg_query.ConstraintsSetStmt:
		st.Class = Session
		w.settings = append(w.settings, constraintsSet(x))

	case *pg_query.DiscardStmt:
		st.Class = Session
		st.Discard = strings.TrimPrefix(x.Target.String(), "DISCARD_")

	case *pg_query.DropStmt:
		st.Class = DDL
		if relationObjects[x.RemoveType] {
			for _, o := range x.Objects {
				w.nameList(o, accWrite)
			}
		} else {
			w.visit(x, write)
		}

	case *pg_query.CommentStmt:
		st.Class = DDL
		switch {
		case relationObjects[x.Objtype]:
			w.nameList(x.Object, accWrite)
		case x.Objtype == pg_query.ObjectType_OBJECT_COLUMN:
			w.nameListDropLast(x.Object, accWrite)
		default:
			w.visit(x, write)
		}

	case *pg_query.RenameStmt:
		st.Class = DDL
		w.visit(x, write)
		if relationObjects[x.RenameType] && x.Relation != nil && x.Newname != "" {
			// The new name is a relation too: unqualified references to it
			// now resolve differently.
			w.addRelation(Relation{Schema: x.Relation.Schemaname, Name: x.Newname, Write: true}, x.Relation.Location)
		}

	case *pg_query.AlterObjectSchemaStmt:
		st.Class = DDL
		w.visit(x, write)
		if relationObjects[x.ObjectType] && x.Relation != nil && x.Newschema != "" {
			w.addRelation(Relation{Schema: x.Newschema, Name: x.Relation.Relname, Write: true}, x.Relation.Location)
		}

	default:
		c, ok := nodeClasses[st.Node]
		if !ok {
			c = SideEffects
		}
		st.Class = c
		if c == SideEffects {
			w.visit(x, read)
		} else {
			w.visit(x, write)
		}
	}

	w.finish(st)
	return st
}

// finish copies the walker's findings into st and decides cacheability.
func (w *walker) finish(st *Statement) {
	st.Relations = sortedValues(w.rels)
	st.Functions = sortedValues(w.funcs)
	st.Operators = w.ops
	st.Casts = w.casts
	st.RunsSQL = w.runsSQL
	st.Settings = w.settings
	st.Params = w.params
	switch {
	case st.Class != Read:
		switch {
		case w.selectInto:
			st.Reason = ReasonSelectInto
		case w.dataModifying:
			st.Reason = ReasonDataModifyingCTE
		default:
			st.Reason = ReasonNotARead
		}
	case w.locking:
		st.Reason = ReasonLockingClause
	case w.tablesample:
		st.Reason = ReasonTableSample
	default:
		st.Reason = w.reason
	}
	st.Cacheable = st.Reason == ""
}

// absorb takes into the outer statement what running the inner one does: its
// parameters always (they are the outer statement's), its relations,
// functions and settings when run is set.
func (w *walker) absorb(in *Statement, run bool) {
	if in.Params > w.params {
		w.params = in.Params
	}
	if !run {
		return
	}
	// The inner statement's findings are already in text order.
	for _, r := range in.Relations {
		w.addRelation(r, 0)
	}
	for _, f := range in.Functions {
		w.addFunction(f, 0)
	}
	w.settings = append(w.settings, in.Settings...)
}

// nameList records a relation given as a list of name strings.
func (w *walker) nameList(n *pg_query.Node, acc access) {
	parts := stringList(n)
	if len(parts) == 0 {
		return
	}
	last := len(parts) - 1
	schema := ""
	if last > 0 {
		schema = parts[last-1]
	}
	w.addRelation(Relation{Schema: schema, Name: parts[last], Write: acc&accWrite != 0, Read: acc&accRead != 0}, unknownPos)
}

// nameListDropLast records the relation of a column given as a name list.
func (w *walker) nameListDropLast(n *pg_query.Node, acc access) {
	parts := stringList(n)
	if len(parts) < 2 {
		return
	}
	parts = parts[:len(parts)-1]
	schema := ""
	if len(parts) > 1 {
		schema = parts[len(parts)-2]
	}
	w.addRelation(Relation{Schema: schema, Name: parts[len(parts)-1], Write: acc&accWrite != 0, Read: acc&accRead != 0}, unknownPos)
}

func stringList(n *pg_query.Node) []string {
	l := n.GetList()
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l.Items))
	for _, it := range l.Items {
		out = append(out, it.GetString_().GetSval())
	}
	return out
}

// sortedValues returns the values of ls in text order, ties in the order
// found.
func sortedValues[T any](ls []located[T]) []T {
	if len(ls) == 0 {
		return nil
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].pos < ls[j].pos })
	out := make([]T, len(ls))
	for i, e := range ls {
		out[i] = e.v
	}
	return out
}

func unwrapNode(n *pg_query.Node) proto.Message {
	if n == nil {
		return nil
	}
	rm := n.ProtoReflect()
	fd := rm.WhichOneof(nodeOneof)
	if fd == nil {
		return nil
	}
	return rm.Get(fd).Message().Interface()
}

func orAll(name string, all bool) string {
	if all {
		return "*"
	}
	return name
}

// explainAnalyze reports whether EXPLAIN's options include ANALYZE (not
// ANALYZE false).
func explainAnalyze(opts []*pg_query.Node) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != "analyze" {
			continue
		}
		if d.Arg == nil {
			return true
		}
		v, ok := constString(d.Arg)
		return !ok || isTrue(v)
	}
	return false
}
