// Package invalidate resolves, for one database, the relations and functions a
// statement uses, so the proxy knows which table changes must drop a cached
// result and whether the result may be cached at all. A Catalog runs short
// read-only transactions on a service connection the caller owns, with
// search_path set to the client's value, so names resolve as they would in the
// client's session: ResolveRelations maps query.Relation names to OIDs and
// expands views to their base relations and partitioned or inheritance parents
// to all their descendants, reporting a stable Reason ("unknown_relation:t",
// "temp_relation:t", "unlogged_relation:t", "foreign_table:t",
// "sequence:s", "system_catalog:pg_class", "volatile_function:f") when the
// result must not be cached; FunctionVolatility asks pg_proc how volatile a
// function is and whether it is builtin. Answers are kept in a count-bounded
// LRU until Forget, which the caller runs after DDL. The package never logs.
package invalidate
