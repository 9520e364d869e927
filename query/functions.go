package query

import "strings"

// funcKind is what this package knows about a builtin function.
type funcKind uint8

const (
	funcUnknown  funcKind = iota // ask pg_proc
	funcSafe                     // immutable, or stable without time or session dependence
	funcVolatile                 // ReasonVolatileFunction
	funcTime                     // ReasonTimeFunction
	funcSession                  // ReasonSessionFunction
	funcCatalog                  // ReasonSystemCatalog
	// funcRunsSQL: volatile, and runs SQL given as text (here or on another
	// connection), which may write anything: Statement.RunsSQL.
	funcRunsSQL
)

// builtinKind classifies a call to name with nargs arguments, unqualified or
// qualified with pg_catalog. The lists follow PostgreSQL 17's pg_proc; they err
// towards refusing the cache.
func builtinKind(name string, nargs int) funcKind {
	if k, ok := builtinFuncs[name]; ok {
		return k
	}
	switch name {
	case "age":
		// age(timestamp) is age(current_date, timestamp).
		if nargs == 1 {
			return funcTime
		}
		return funcSafe
	case "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
		"ts_debug", "json_to_tsvector", "jsonb_to_tsvector":
		// Without a configuration argument these use the session's
		// default_text_search_config.
		if nargs == 1 || (nargs == 2 && strings.HasPrefix(name, "json")) {
			return funcSession
		}
		return funcSafe
	case "ts_headline":
		// ts_headline(document, query [, options]) uses the default
		// configuration; with three arguments it cannot be told apart from
		// ts_headline(config, document, query).
		if nargs <= 3 {
			return funcSession
		}
		return funcSafe
	case "timezone":
		// AT LOCAL (one argument) uses the session's TimeZone, which the
		// server reports; the proxy keys on it.
		return funcSafe
	}
	for _, p := range builtinPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.kind
		}
	}
	if strings.HasPrefix(name, "has_") && strings.HasSuffix(name, "_privilege") {
		return funcSession
	}
	if strings.HasSuffix(name, "_is_visible") {
		return funcCatalog
	}
	if strings.HasPrefix(name, "pg_") {
		// Server administration, statistics, sizes, WAL, locks, files,
		// replication: their results change without any write.
		return funcVolatile
	}
	return funcUnknown
}

// builtinPrefixes is searched in order, after builtinFuncs.
var builtinPrefixes = []struct {
	prefix string
	kind   funcKind
}{
	{"pg_get_", funcCatalog},
	{"pg_describe_object", funcCatalog},
	{"pg_identify_object", funcCatalog},
	{"pg_partition_", funcCatalog},
	{"pg_index_", funcCatalog},
	{"pg_indexam_", funcCatalog},
	{"txid_", funcVolatile},
	{"pg_current_xact_id", funcVolatile},
	{"pg_advisory", funcVolatile},
	{"pg_try_advisory", funcVolatile},
	{"pg_sleep", funcVolatile},
	{"lo_", funcVolatile},
	{"dblink", funcRunsSQL},
	{"uuid_generate_", funcVolatile},
	{"binary_upgrade_", funcVolatile},
	{"brin_", funcVolatile},
	{"gin_clean_pending_list", funcVolatile},
	{"query_to_xml", funcRunsSQL},
	{"cursor_to_xml", funcVolatile},
	{"table_to_xml", funcVolatile},
	{"schema_to_xml", funcVolatile},
	{"database_to_xml", funcVolatile},
	{"pgstat", funcVolatile},
	{"pgp_sym_encrypt", funcVolatile},
	{"pgp_pub_encrypt", funcVolatile},
}

// builtinFuncs maps builtin function names to their kind. Names not found here
// go through the special cases and builtinPrefixes; names found nowhere are
// reported in Statement.Functions for a pg_proc lookup.
var builtinFuncs = map[string]funcKind{
	// Volatile: a different result on each call, or side effects.
	"random":                 funcVolatile,
	"random_normal":          funcVolatile,
	"setseed":                funcVolatile,
	"gen_random_uuid":        funcVolatile,
	"uuidv4":                 funcVolatile,
	"uuidv7":                 funcVolatile,
	"gen_random_bytes":       funcVolatile,
	"gen_salt":               funcVolatile,
	"normal_rand":            funcVolatile,
	"crosstab":               funcVolatile,
	"nextval":                funcVolatile,
	"currval":                funcVolatile,
	"lastval":                funcVolatile,
	"setval":                 funcVolatile,
	"set_config":             funcVolatile,
	"array_shuffle":          funcVolatile,
	"array_sample":           funcVolatile,
	"loread":                 funcVolatile,
	"lowrite":                funcVolatile,
	"ts_stat":                funcVolatile,
	"pg_notify":              funcVolatile,
	"pg_sequence_last_value": funcVolatile,

	// Time: depends on the clock or the transaction's start.
	"now":                      funcTime,
	"transaction_timestamp":    funcTime,
	"statement_timestamp":      funcTime,
	"clock_timestamp":          funcTime,
	"timeofday":                funcTime,
	"pg_postmaster_start_time": funcTime,
	"pg_conf_load_time":        funcTime,

	// Session: depends on who is connected, from where, or session state.
	"current_user":                     funcSession,
	"session_user":                     funcSession,
	"current_role":                     funcSession,
	"user":                             funcSession,
	"system_user":                      funcSession,
	"getpgusername":                    funcSession,
	"current_database":                 funcSession,
	"current_catalog":                  funcSession,
	"current_schema":                   funcSession,
	"current_schemas":                  funcSession,
	"current_setting":                  funcSession,
	"current_query":                    funcSession,
	"get_current_ts_config":            funcSession,
	"inet_client_addr":                 funcSession,
	"inet_client_port":                 funcSession,
	"inet_server_addr":                 funcSession,
	"inet_server_port":                 funcSession,
	"row_security_active":              funcSession,
	"pg_backend_pid":                   funcSession,
	"pg_has_role":                      funcSession,
	"pg_my_temp_schema":                funcSession,
	"pg_is_other_temp_schema":          funcSession,
	"pg_trigger_depth":                 funcSession,
	"pg_listening_channels":            funcSession,
	"pg_client_encoding":               funcSession,
	"pg_jit_available":                 funcSession,
	"pg_current_logfile":               funcSession,
	"pg_event_trigger_ddl_commands":    funcSession,
	"pg_event_trigger_dropped_objects": funcSession,

	// Catalog: reads the system catalogs, which DDL changes.
	"format_type":              funcCatalog,
	"obj_description":          funcCatalog,
	"col_description":          funcCatalog,
	"shobj_description":        funcCatalog,
	"pg_basetype":              funcCatalog,
	"to_regclass":              funcCatalog,
	"to_regcollation":          funcCatalog,
	"to_regnamespace":          funcCatalog,
	"to_regoper":               funcCatalog,
	"to_regoperator":           funcCatalog,
	"to_regproc":               funcCatalog,
	"to_regprocedure":          funcCatalog,
	"to_regrole":               funcCatalog,
	"to_regtype":               funcCatalog,
	"to_regtypemod":            funcCatalog,
	"pg_tablespace_location":   funcCatalog,
	"pg_relation_filenode":     funcCatalog,
	"pg_relation_filepath":     funcCatalog,
	"pg_filenode_relation":     funcCatalog,
	"pg_column_is_updatable":   funcCatalog,
	"pg_relation_is_updatable": funcCatalog,
	"pg_options_to_table":      funcSafe,
	"pg_encoding_to_char":      funcSafe,
	"pg_char_to_encoding":      funcSafe,
	"getdatabaseencoding":      funcSafe,

	// Safe pg_ functions: results depend on the arguments alone.
	"pg_typeof":             funcSafe,
	"pg_size_pretty":        funcSafe,
	"pg_size_bytes":         funcSafe,
	"pg_column_size":        funcSafe,
	"pg_column_compression": funcSafe,
	"pg_collation_for":      funcSafe,
	"pg_input_is_valid":     funcSafe,
	"pg_input_error_info":   funcSafe,
	"pg_wal_lsn_diff":       funcSafe,
	"pg_lsn":                funcSafe,

	// Safe: aggregates and window functions.
	"count": funcSafe, "sum": funcSafe, "avg": funcSafe, "min": funcSafe, "max": funcSafe,
	"array_agg": funcSafe, "string_agg": funcSafe, "json_agg": funcSafe, "jsonb_agg": funcSafe,
	"json_agg_strict": funcSafe, "jsonb_agg_strict": funcSafe,
	"json_object_agg": funcSafe, "jsonb_object_agg": funcSafe,
	"json_object_agg_strict": funcSafe, "jsonb_object_agg_strict": funcSafe,
	"json_object_agg_unique": funcSafe, "jsonb_object_agg_unique": funcSafe,
	"json_object_agg_unique_strict": funcSafe, "jsonb_object_agg_unique_strict": funcSafe,
	"bool_and": funcSafe, "bool_or": funcSafe, "every": funcSafe, "bit_and": funcSafe,
	"bit_or": funcSafe, "bit_xor": funcSafe, "any_value": funcSafe, "xmlagg": funcSafe,
	"stddev": funcSafe, "stddev_pop": funcSafe, "stddev_samp": funcSafe, "variance": funcSafe,
	"var_pop": funcSafe, "var_samp": funcSafe, "corr": funcSafe, "covar_pop": funcSafe,
	"covar_samp": funcSafe, "regr_avgx": funcSafe, "regr_avgy": funcSafe, "regr_count": funcSafe,
	"regr_intercept": funcSafe, "regr_r2": funcSafe, "regr_slope": funcSafe, "regr_sxx": funcSafe,
	"regr_sxy": funcSafe, "regr_syy": funcSafe, "percentile_cont": funcSafe,
	"percentile_disc": funcSafe, "mode": funcSafe, "range_agg": funcSafe,
	"range_intersect_agg": funcSafe,
	"row_number":          funcSafe, "rank": funcSafe, "dense_rank": funcSafe, "percent_rank": funcSafe,
	"cume_dist": funcSafe, "ntile": funcSafe, "lag": funcSafe, "lead": funcSafe,
	"first_value": funcSafe, "last_value": funcSafe, "nth_value": funcSafe,

	// Safe: strings.
	"lower": funcSafe, "upper": funcSafe, "initcap": funcSafe, "length": funcSafe,
	"char_length": funcSafe, "character_length": funcSafe, "octet_length": funcSafe,
	"bit_length": funcSafe, "substr": funcSafe, "substring": funcSafe, "btrim": funcSafe,
	"ltrim": funcSafe, "rtrim": funcSafe, "trim": funcSafe, "replace": funcSafe,
	"concat": funcSafe, "concat_ws": funcSafe, "format": funcSafe, "left": funcSafe,
	"right": funcSafe, "lpad": funcSafe, "rpad": funcSafe, "position": funcSafe,
	"strpos": funcSafe, "split_part": funcSafe, "starts_with": funcSafe, "repeat": funcSafe,
	"reverse": funcSafe, "translate": funcSafe, "ascii": funcSafe, "chr": funcSafe,
	"to_hex": funcSafe, "to_bin": funcSafe, "to_oct": funcSafe, "quote_ident": funcSafe,
	"quote_literal": funcSafe, "quote_nullable": funcSafe, "md5": funcSafe, "sha224": funcSafe,
	"sha256": funcSafe, "sha384": funcSafe, "sha512": funcSafe, "encode": funcSafe,
	"decode": funcSafe, "convert": funcSafe, "convert_from": funcSafe, "convert_to": funcSafe,
	"regexp_replace": funcSafe, "regexp_match": funcSafe, "regexp_matches": funcSafe,
	"regexp_like": funcSafe, "regexp_count": funcSafe, "regexp_instr": funcSafe,
	"regexp_substr": funcSafe, "regexp_split_to_array": funcSafe,
	"regexp_split_to_table": funcSafe, "string_to_array": funcSafe, "string_to_table": funcSafe,
	"overlay": funcSafe, "normalize": funcSafe, "is_normalized": funcSafe, "unistr": funcSafe,
	"like_escape": funcSafe, "similar_to_escape": funcSafe, "similar_escape": funcSafe,
	"casefold": funcSafe, "crc32": funcSafe, "crc32c": funcSafe, "get_byte": funcSafe,
	"set_byte": funcSafe, "get_bit": funcSafe, "set_bit": funcSafe, "bit_count": funcSafe,
	"text": funcSafe, "parse_ident": funcSafe, "num_nulls": funcSafe, "num_nonnulls": funcSafe,

	// Safe: numbers.
	"abs": funcSafe, "round": funcSafe, "ceil": funcSafe, "ceiling": funcSafe, "floor": funcSafe,
	"trunc": funcSafe, "mod": funcSafe, "power": funcSafe, "pow": funcSafe, "sqrt": funcSafe,
	"cbrt": funcSafe, "exp": funcSafe, "ln": funcSafe, "log": funcSafe, "log10": funcSafe,
	"sign": funcSafe, "div": funcSafe, "gcd": funcSafe, "lcm": funcSafe, "factorial": funcSafe,
	"pi": funcSafe, "degrees": funcSafe, "radians": funcSafe, "sin": funcSafe, "cos": funcSafe,
	"tan": funcSafe, "asin": funcSafe, "acos": funcSafe, "atan": funcSafe, "atan2": funcSafe,
	"width_bucket": funcSafe, "scale": funcSafe, "min_scale": funcSafe, "trim_scale": funcSafe,
	"greatest": funcSafe, "least": funcSafe, "numeric": funcSafe, "int4": funcSafe, "int8": funcSafe,
	"float8": funcSafe,

	// Safe: date and time arithmetic on given values (the session's
	// TimeZone and DateStyle, which the server reports, belong in the key).
	"date_trunc": funcSafe, "date_part": funcSafe, "extract": funcSafe, "date_bin": funcSafe,
	"make_date": funcSafe, "make_time": funcSafe, "make_timestamp": funcSafe,
	"make_timestamptz": funcSafe, "make_interval": funcSafe, "justify_days": funcSafe,
	"justify_hours": funcSafe, "justify_interval": funcSafe, "isfinite": funcSafe,
	"to_char": funcSafe, "to_date": funcSafe, "to_timestamp": funcSafe, "to_number": funcSafe,
	"overlaps": funcSafe, "date_add": funcSafe, "date_subtract": funcSafe,

	// Safe: arrays, ranges, sets.
	"array_length": funcSafe, "array_upper": funcSafe, "array_lower": funcSafe,
	"array_ndims": funcSafe, "array_dims": funcSafe, "array_to_string": funcSafe,
	"array_position": funcSafe, "array_positions": funcSafe, "array_append": funcSafe,
	"array_prepend": funcSafe, "array_cat": funcSafe, "array_remove": funcSafe,
	"array_replace": funcSafe, "array_fill": funcSafe, "array_reverse": funcSafe,
	"array_sort": funcSafe, "trim_array": funcSafe, "cardinality": funcSafe, "unnest": funcSafe,
	"generate_series": funcSafe, "generate_subscripts": funcSafe, "isempty": funcSafe,
	"lower_inc": funcSafe, "upper_inc": funcSafe, "lower_inf": funcSafe, "upper_inf": funcSafe,
	"range_merge": funcSafe, "int4range": funcSafe, "int8range": funcSafe, "numrange": funcSafe,
	"tsrange": funcSafe, "tstzrange": funcSafe, "daterange": funcSafe, "multirange": funcSafe,

	// Safe: JSON.
	"to_json": funcSafe, "to_jsonb": funcSafe, "row_to_json": funcSafe, "array_to_json": funcSafe,
	"json_build_object": funcSafe, "jsonb_build_object": funcSafe, "json_build_array": funcSafe,
	"jsonb_build_array": funcSafe, "json_object": funcSafe, "jsonb_object": funcSafe,
	"json_array_length": funcSafe, "jsonb_array_length": funcSafe, "json_each": funcSafe,
	"jsonb_each": funcSafe, "json_each_text": funcSafe, "jsonb_each_text": funcSafe,
	"json_extract_path": funcSafe, "jsonb_extract_path": funcSafe,
	"json_extract_path_text": funcSafe, "jsonb_extract_path_text": funcSafe,
	"json_object_keys": funcSafe, "jsonb_object_keys": funcSafe,
	"json_array_elements": funcSafe, "jsonb_array_elements": funcSafe,
	"json_array_elements_text": funcSafe, "jsonb_array_elements_text": funcSafe,
	"json_typeof": funcSafe, "jsonb_typeof": funcSafe, "json_strip_nulls": funcSafe,
	"jsonb_strip_nulls": funcSafe, "jsonb_set": funcSafe, "jsonb_set_lax": funcSafe,
	"jsonb_insert": funcSafe, "jsonb_pretty": funcSafe, "json_populate_record": funcSafe,
	"jsonb_populate_record": funcSafe, "jsonb_populate_record_valid": funcSafe,
	"json_populate_recordset": funcSafe, "jsonb_populate_recordset": funcSafe,
	"json_to_record": funcSafe, "jsonb_to_record": funcSafe, "json_to_recordset": funcSafe,
	"jsonb_to_recordset": funcSafe, "jsonb_path_exists": funcSafe, "jsonb_path_match": funcSafe,
	"jsonb_path_query": funcSafe, "jsonb_path_query_array": funcSafe,
	"jsonb_path_query_first": funcSafe,

	// Safe: misc.
	"coalesce": funcSafe, "nullif": funcSafe, "ts_rank": funcSafe, "ts_rank_cd": funcSafe,
	"setweight": funcSafe, "strip": funcSafe, "numnode": funcSafe, "querytree": funcSafe,
	"ts_rewrite": funcSafe, "tsvector_to_array": funcSafe, "array_to_tsvector": funcSafe,
	"version": funcSafe, "xmlparse": funcSafe, "xpath": funcSafe, "xpath_exists": funcSafe,
	"host": funcSafe, "hostmask": funcSafe, "masklen": funcSafe, "netmask": funcSafe,
	"network": funcSafe, "family": funcSafe, "inet_same_family": funcSafe, "inet_merge": funcSafe,
	"uuid_extract_timestamp": funcSafe, "uuid_extract_version": funcSafe,
}
