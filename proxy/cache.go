package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/cachecore"
	"github.com/pgmemo/pgmemo/invalidate"
	"github.com/pgmemo/pgmemo/query"
)

// TxPolicy says when reads inside a transaction block may be served from the
// cache.
type TxPolicy uint8

const (
	// TxUntilWrite serves hits in a READ COMMITTED block until its first
	// write or statement with unknown side effects; REPEATABLE READ and
	// SERIALIZABLE blocks always go upstream. It is the default.
	TxUntilWrite TxPolicy = iota
	// TxNever sends every statement of a transaction block upstream.
	TxNever
)

// ParseTxPolicy parses "until-write" or "never".
func ParseTxPolicy(s string) (TxPolicy, error) {
	switch s {
	case "until-write", "":
		return TxUntilWrite, nil
	case "never":
		return TxNever, nil
	}
	return 0, fmt.Errorf("unknown transaction policy %q (want until-write or never)", s)
}

func (p TxPolicy) String() string {
	if p == TxNever {
		return "never"
	}
	return "until-write"
}

// CacheOptions configures result caching. The zero value disables caching:
// the proxy then only relays.
type CacheOptions struct {
	// Enabled turns caching on. Invalidation is by statement: a write
	// through this proxy invalidates what it wrote when it commits. Writes
	// that bypass the proxy are not seen; bound their staleness with TTL.
	Enabled bool
	// MaxBytes bounds the cache's memory (default 256 MiB).
	MaxBytes int64
	// MaxPinnedBytes bounds the part of MaxBytes that entries pinned by a
	// RulePin rule may hold (default MaxBytes/4); further pins are cached
	// unpinned.
	MaxPinnedBytes int64
	// MaxEntryBytes is the largest result cached (default 1 MiB); larger
	// results stream through uncached.
	MaxEntryBytes int
	// TTL, when positive, bounds how long an entry is served.
	TTL time.Duration
	// TxPolicy decides hits inside transaction blocks.
	TxPolicy TxPolicy
	// AnalyzerSize bounds the number of statement analyses kept (default
	// query.DefaultCacheSize).
	AnalyzerSize int

	// WAL makes every database's changes known through logical replication
	// (invalidate.Consumer, started when the database's first client
	// connects, with the Upstream URL's credentials, which need the
	// REPLICATION attribute), so that writes that do not go through the
	// proxy invalidate too. A database's results are served only while its
	// stream is current within MaxStaleness; until then, and whenever the
	// stream is lost, its reads go upstream. Writes through the proxy still
	// invalidate at once, at commit.
	WAL bool
	// MaxStaleness bounds how far behind the server the stream may be while
	// hits are served (default 1s).
	MaxStaleness time.Duration
	// Publication and ReplicationSlot configure the stream (see
	// invalidate.Consumer): empty means "pgmemo" and temporary slots. A
	// persistent slot is named ReplicationSlot + "_" + the database name.
	Publication     string
	ReplicationSlot string
	// WALIdleTimeout stops a database's replication stream once the
	// database has had no client for this long (default 5 minutes; negative:
	// never), so that a proxy that served many databases does not hold a
	// WAL sender and a slot for each forever. Everything cached from the
	// database is dropped then; the stream starts again with the next client.
	WALIdleTimeout time.Duration
	// AccessCheckInterval is how often each database's roles, memberships,
	// privileges and row-level security are read to see whether they
	// changed without the proxy (default 2 s). Such a change drops the
	// database's entries; until it is seen, a role that lost access made
	// elsewhere may still get hits. (Changes of privileges on tables and
	// schemas, and of policies, also reach the proxy at once through the
	// replication stream once pgmemo install-ddl-hook has run; changes of
	// roles and memberships do not: PostgreSQL fires no event trigger for
	// them.)
	AccessCheckInterval time.Duration

	// OptIn caches only the statements a RuleCache rule names; by default
	// everything safe is cached.
	OptIn bool
	// Rules refine what is cached, per relation or per normalized statement
	// (see Rule). Server.SetRules replaces them while serving.
	Rules []Rule
}

// RuleAction is what a Rule does to the statements it matches.
type RuleAction uint8

const (
	// RuleCache caches the statement (it must still be safe to cache), for
	// at most TTL when set. In OptIn mode only such statements are cached.
	RuleCache RuleAction = iota
	// RuleNever never caches the statement.
	RuleNever
	// RulePin caches the statement like RuleCache and keeps its entries
	// across evictions (within CacheOptions.MaxPinnedBytes): for the few
	// results that must stay hot whatever else is read. They are still
	// invalidated by writes like every entry.
	RulePin
)

// Rule matches statements by a relation they read or by their normalized
// form. RuleNever wins over RuleCache and RulePin; a statement matched by a
// RulePin rule is pinned; the smallest TTL wins among the matching rules; a
// /* pgmemo:ttl=... */ hint wins over rules.
type Rule struct {
	// Relation matches statements that name this relation, as schema.name
	// (the schema the catalog resolves it to) or as a bare name (any
	// schema). A view's rule matches statements naming the view.
	Relation string
	// Fingerprint matches statements with this pg_query fingerprint (as
	// SHOW pgmemo.queries lists them).
	Fingerprint string
	Action      RuleAction
	TTL         time.Duration
}

func (r Rule) matches(fp string, names []string) bool {
	if r.Fingerprint != "" && r.Fingerprint == fp {
		return true
	}
	if r.Relation == "" {
		return false
	}
	for _, n := range names {
		if n == r.Relation || !strings.Contains(r.Relation, ".") && strings.HasSuffix(n, "."+r.Relation) {
			return true
		}
	}
	return false
}

func (o *CacheOptions) walIdleTimeout() time.Duration {
	switch {
	case o.WALIdleTimeout < 0:
		return 0
	case o.WALIdleTimeout == 0:
		return 5 * time.Minute
	}
	return o.WALIdleTimeout
}

func (o *CacheOptions) accessCheckInterval() time.Duration {
	if o.AccessCheckInterval > 0 {
		return o.AccessCheckInterval
	}
	return 2 * time.Second
}

func (o *CacheOptions) maxStaleness() time.Duration {
	if o.MaxStaleness > 0 {
		return o.MaxStaleness
	}
	return time.Second
}

// cacheState is the server's cache: shared by every session.
type cacheState struct {
	opts  CacheOptions
	log   *slog.Logger
	c     *cachecore.Cache
	an    *query.Analyzer
	up    *Upstream
	mu    sync.Mutex
	dbs   map[string]*dbState
	dbSeq uint32

	ctx  context.Context // ends with stop: the replication consumers
	stop context.CancelFunc
	wg   sync.WaitGroup

	rules        atomic.Pointer[[]Rule]
	durations    [numResults]histogram
	walDelayHist histogram

	invStatement atomic.Uint64 // invalidations by writes through the proxy
	invWAL       atomic.Uint64 // by the replication stream
	walOwn       atomic.Uint64 // relation changes of the proxy's own transactions, invalidated at commit already
	ownXactIDs   atomic.Uint64 // write transactions whose ID the proxy learned (ownxact.go)
	invAdmin     atomic.Uint64 // by PGMEMO INVALIDATE
	invAccess    atomic.Uint64 // by a change of roles, privileges or policies seen by checkAccess

	bypass       atomic.Uint64 // cacheable reads sent upstream because of session or transaction state
	notCacheable atomic.Uint64
	localAnswers atomic.Uint64 // extended-protocol batches answered without the upstream
	// checksPassed and checksFailed count the checks of sessions after
	// hidden code (probe.go) by outcome.
	checksPassed, checksFailed atomic.Uint64
}

func (cs *cacheState) maxEntry() int {
	if cs.opts.MaxEntryBytes > 0 {
		return cs.opts.MaxEntryBytes
	}
	return cachecore.DefaultMaxEntryBytes
}

func (cs *cacheState) maxBytes() int64 {
	if cs.opts.MaxBytes > 0 {
		return cs.opts.MaxBytes
	}
	return cachecore.DefaultMaxBytes
}

func newCacheState(opts CacheOptions, up *Upstream, log *slog.Logger) (*cacheState, error) {
	c, err := cachecore.New(cachecore.Options{MaxBytes: opts.MaxBytes, MaxEntryBytes: opts.MaxEntryBytes, MaxPinnedBytes: opts.MaxPinnedBytes, TTL: opts.TTL})
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	rules := slices.Clone(opts.Rules)
	cs := &cacheState{
		ctx:  ctx,
		stop: stop,
		opts: opts,
		log:  log,
		c:    c,
		an:   query.NewAnalyzer(query.Config{CacheSize: opts.AnalyzerSize}),
		up:   up,
		dbs:  map[string]*dbState{},
	}
	cs.rules.Store(&rules)
	cs.wg.Add(1)
	go cs.maintain()
	return cs, nil
}

// maintainInterval is how often maintain runs.
const maintainInterval = 2 * time.Second

// maintain, until the cache stops, returns the memory of stale pinned entries
// (which are never evicted) to the rest of the cache, and per database stops
// a replication stream idle for CacheOptions.WALIdleTimeout, forgets own
// transactions the stream never reported, and, every
// CacheOptions.AccessCheckInterval, checks its access rules.
func (cs *cacheState) maintain() {
	defer cs.wg.Done()
	t := time.NewTicker(maintainInterval)
	defer t.Stop()
	a := time.NewTicker(cs.opts.accessCheckInterval())
	defer a.Stop()
	for {
		select {
		case <-cs.ctx.Done():
			return
		case now := <-t.C:
			cs.c.Sweep()
			for _, d := range cs.databases() {
				cs.stopIdleWAL(d, now)
				d.own.prune(now)
			}
		case <-a.C:
			for _, d := range cs.databases() {
				cs.checkAccess(d)
			}
		}
	}
}

// accessTimeout bounds one read of a database's access digest.
const accessTimeout = 5 * time.Second

// checkAccess reads d's access digest (invalidate.Catalog.AccessDigest:
// roles, memberships, privileges, row-level security) and, if it changed
// since the last read, drops the database's entries and plans: a role may
// now read other rows, and no replication stream or event trigger reports
// such changes when they are made without the proxy. The first read, when
// the database's first session starts, only records it; if that read
// failed, the first one that succeeds also drops everything.
func (cs *cacheState) checkAccess(d *dbState) {
	ctx, cancel := context.WithTimeout(cs.ctx, accessTimeout)
	defer cancel()
	digest, err := d.catalog.AccessDigest(ctx)
	if err != nil {
		return // the catalog's failure shows in plans (catalog_unavailable)
	}
	d.accessMu.Lock()
	prev, known := d.access, d.accessKnown
	d.access, d.accessKnown = digest, true
	d.accessMu.Unlock()
	if known && prev != digest || !known && d.accessTried.Load() {
		cs.invAccess.Add(1)
		cs.c.InvalidateScope(d.scope)
		d.forget()
	}
}

// dbState is what the cache keeps per upstream database.
type dbState struct {
	name    string
	id      uint32
	scope   cachecore.Scope
	catalog *invalidate.Catalog
	plans   sync.Map // planKey -> *plan
	nplans  atomic.Int64
	gen     atomic.Uint64 // bumped by DDL: plans of older generations are stale

	warnMu   sync.Mutex
	lastWarn time.Time

	queries  sync.Map // fingerprint -> *queryStats
	nqueries atomic.Int64
	rels     sync.Map // OID -> *relStats

	wal *invalidate.Consumer // nil unless CacheOptions.WAL
	own ownXacts             // this proxy's committed transactions the stream has yet to report
	// clients counts the database's sessions; idleSince is when the last
	// one ended (unix ns). walMu guards walStop and walDone: the running
	// stream's cancel function and end, nil while it is stopped.
	clients   atomic.Int64
	idleSince atomic.Int64
	walMu     sync.Mutex
	walStop   context.CancelFunc
	walDone   chan struct{}
	// walInvalidations counts relation changes from the stream, walDelay
	// the latest and largest delay from commit to invalidation (ns).
	walInvalidations atomic.Uint64
	walDelayLast     atomic.Int64
	walDelayMax      atomic.Int64
	walLastWarn      atomic.Int64
	walDelays        delayRing

	// probe is the session probe's query (probe.go), built when first
	// needed; probeTried is when that was last tried.
	probeMu       sync.Mutex
	probe         string
	probeTried    time.Time
	probeBuilding bool // a background try is running

	// The database's access digest (checkAccess): read once when its first
	// session starts (accessOnce), then by maintain.
	accessOnce  sync.Once
	accessTried atomic.Bool // the first read was made (it may have failed)
	accessMu    sync.Mutex
	access      string
	accessKnown bool // access holds a digest
}

// delayRing keeps the most recent commit-to-invalidation delays.
type delayRing struct {
	mu   sync.Mutex
	buf  [4096]int64
	n, i int
}

func (r *delayRing) add(ns int64) {
	r.mu.Lock()
	r.buf[r.i] = ns
	r.i = (r.i + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// quantiles returns the qs quantiles (0..1) of the kept delays, in ns; nil
// when there are none.
func (r *delayRing) quantiles(qs ...float64) []int64 {
	r.mu.Lock()
	d := slices.Clone(r.buf[:r.n])
	r.mu.Unlock()
	if len(d) == 0 {
		return nil
	}
	slices.Sort(d)
	out := make([]int64, len(qs))
	for i, q := range qs {
		out[i] = d[min(len(d)-1, int(q*float64(len(d))))]
	}
	return out
}

// catalogFailed logs, at most once a minute per database, that the catalog
// could not be asked: until it can, nothing of that database is cached.
func (cs *cacheState) catalogFailed(d *dbState, err error) {
	d.warnMu.Lock()
	defer d.warnMu.Unlock()
	if time.Since(d.lastWarn) < time.Minute {
		return
	}
	d.lastWarn = time.Now()
	cs.log.Warn("cannot read the catalog on the service connection (the --upstream URL's user and password); results of this database are not cached and writes invalidate all of it",
		"database", d.name, "err", err)
}

// acquire returns the state of database name for a new session, which must
// call release when it ends, and starts the database's replication stream if
// it is not running.
func (cs *cacheState) acquire(name string) *dbState {
	d := cs.db(name)
	d.accessOnce.Do(func() {
		cs.checkAccess(d)
		d.accessTried.Store(true)
	})
	d.clients.Add(1)
	if d.wal != nil {
		d.walMu.Lock()
		if d.walStop == nil {
			cs.runWAL(d)
		}
		d.walMu.Unlock()
	}
	return d
}

// release ends a session's use of d.
func (d *dbState) release() {
	if d.clients.Add(-1) == 0 {
		d.idleSince.Store(time.Now().UnixNano())
	}
}

func (cs *cacheState) db(name string) *dbState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if d := cs.dbs[name]; d != nil {
		return d
	}
	cs.dbSeq++
	d := &dbState{name: name, id: cs.dbSeq, scope: cachecore.Scope(cs.dbSeq)}
	d.catalog = &invalidate.Catalog{Connect: func(ctx context.Context) (*pgconn.PgConn, error) {
		if cs.up == nil || cs.up.Config == nil {
			return nil, invalidate.ErrNoConnection // a cache without an upstream (benchmarks)
		}
		cfg := cs.up.Config.Copy()
		cfg.Database = name
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		cfg.RuntimeParams["application_name"] = "pgmemo catalog"
		return pgconn.ConnectConfig(ctx, serviceConfig(cfg))
	}}
	cs.dbs[name] = d
	if cs.opts.WAL {
		cs.newWAL(d)
	}
	return d
}

// close stops the replication consumers.
func (cs *cacheState) close() {
	cs.stop()
	cs.wg.Wait()
}

// tag is the cache tag of a relation of d.
func (d *dbState) tag(oid uint32) cachecore.Tag {
	return cachecore.Tag(uint64(d.id)<<32 | uint64(oid))
}

// relationOfTag is the inverse of dbState.tag: ok is false for the tags that
// are not a relation's (fingerprintTag).
func relationOfTag(t cachecore.Tag) (db, oid uint32, ok bool) {
	if t>>63 != 0 {
		return 0, 0, false
	}
	return uint32(t >> 32), uint32(t), true
}

// forget drops what the database's plans and catalog lookups assumed about
// its schema, after DDL.
func (d *dbState) forget() {
	d.gen.Add(1)
	d.catalog.Forget()
	d.plans.Clear()
	d.nplans.Store(0)
}

// maxPlans bounds the plans kept per database; past it they are all dropped
// and rebuilt on demand (plans are cheap once the catalog answers are cached).
const maxPlans = 20000

// failedPlanTTL is how long a plan made while the catalog was unreachable is
// kept before the catalog is asked again.
const failedPlanTTL = 5 * time.Second

// plan is what the proxy decided about one statement text under one
// search_path: whether its result may be cached, under which tags, and what
// executing it does to the cache and the session.
type plan struct {
	an        *query.Analysis
	cacheable bool
	reason    string
	tags      []cachecore.Tag // relations read, for a cacheable read
	ttl       time.Duration   // from a rule or a hint; 0: the cache's
	pin       bool            // a RulePin rule matched
	admin     adminCommand    // a pgmemo command, answered locally
	adminArg  string
	fx        []stmtFx    // one per statement
	qs        *queryStats // nil for pgmemo commands
	gen       uint64
	expires   time.Time // zero: until the next DDL
}

// stmtFx is what one executed statement does, applied when the server
// reports it complete.
type stmtFx struct {
	writes []cachecore.Tag // relations whose cached reads become stale at commit
	scope  bool            // unknown side effects: the whole database is stale at commit
	all    bool            // roles or privileges changed: every database is stale
	ddl    bool            // the schema changed: forget plans and catalog lookups
	wrote  bool            // ends "until-write" hits in a transaction block
	// hidden: code the proxy cannot see ran (DO, CALL, a volatile user
	// function, an unknown statement): it may have changed settings with
	// set_config or created temporary tables that shadow others, so the
	// session stops using the cache (until DISCARD ALL).
	hidden   bool
	st       *query.Statement
	settings bool // st changes settings (SET, RESET, DISCARD, set_config)
}

// stale reports whether p must be made again: the schema changed since, or
// p was made while the catalog failed and its short life is over. (The clock
// is read only for such plans: planOf runs several times per batch.)
func (p *plan) stale(d *dbState) bool {
	return p.gen != d.gen.Load() || !p.expires.IsZero() && time.Now().After(p.expires)
}

// planFor returns the plan of text for a session whose effective search_path
// (with $user replaced by the role) is searchPath. A text seen for the first
// time whose shape (see shapeOf) has a plan already shares that plan.
func (cs *cacheState) planFor(ctx context.Context, d *dbState, searchPath, text string) *plan {
	if v, ok := d.plans.Load(planKey{searchPath, text}); ok {
		p := v.(*plan)
		if !p.stale(d) {
			return p
		}
	}
	shape, shaped := shapeOf(text)
	if shaped && shape != text {
		if v, ok := d.plans.Load(shapeKey{searchPath, shape}); ok {
			p := v.(*plan)
			if !p.stale(d) {
				return p
			}
		}
	}
	gen := d.gen.Load()
	text = strings.Clone(text) // the caller's text may alias a reused buffer
	p := cs.makePlan(ctx, d, searchPath, text)
	p.gen = gen
	if p.admin == adminNone {
		p.qs = d.queryStatsFor(p)
	}
	if d.nplans.Add(1) > maxPlans {
		d.plans.Clear()
		d.nplans.Store(1)
	}
	if shaped && shape != text && shapeSafe(p) {
		// Later texts of the same shape find it; this one too.
		d.plans.Store(shapeKey{searchPath, shape}, p)
	} else {
		d.plans.Store(planKey{searchPath, text}, p)
	}
	return p
}

// shapeKey keys the plans shared by a shape; a distinct type from planKey so
// that a shape never matches a text.
type shapeKey struct{ searchPath, shape string }

type planKey struct{ searchPath, text string }

// Reasons the proxy adds to query's and invalidate's.
const (
	reasonCatalog        = "catalog_unavailable"
	reasonCachingOff     = "caching_off"
	reasonTooLarge       = "too_large"
	reasonRowLimit       = "row_limit"
	reasonTransaction    = "transaction"
	reasonFailedTx       = "failed_transaction"
	reasonPipelined      = "pipelined"
	reasonSettings       = "untracked_settings"
	reasonHidden         = "hidden_effects"
	reasonUnknownStmt    = "unknown_statement"
	reasonAfterWrite     = "after_write_in_batch"
	reasonSessionSetup   = "session_setup_failed"
	reasonReplication    = "replication_not_current"
	reasonRuleNever      = "rule_never"
	reasonOptIn          = "opt_in_no_rule"
	reasonReplicationLag = "replication_lag"
	// reasonCatalogShadowed: the search_path names pg_catalog after another
	// schema.
	reasonCatalogShadowed = "search_path_before_pg_catalog"
)

// catalogShadowed reports whether searchPath (as SHOW search_path gives it)
// lists pg_catalog after another schema, so that unqualified names may find
// a user's function or operator instead of the builtin one. Without
// pg_catalog in it, PostgreSQL searches pg_catalog first.
func catalogShadowed(searchPath string) bool {
	for i, part := range strings.Split(searchPath, ",") {
		part = strings.Trim(strings.TrimSpace(part), `"`)
		if part == "pg_catalog" {
			return i > 0
		}
	}
	return false
}

func (cs *cacheState) makePlan(ctx context.Context, d *dbState, searchPath, text string) *plan {
	an := cs.an.Analyze(text)
	p := &plan{an: an, cacheable: an.Cacheable, reason: an.Reason}
	if cmd, arg := adminCommandOf(text, an); cmd != adminNone {
		p.admin, p.adminArg, p.cacheable, p.reason = cmd, arg, false, "pgmemo_command"
		p.fx = []stmtFx{{}}
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	catalogFailed := false
	var relNames []string
	if len(an.Statements) == 0 {
		if an.Class == query.Unknown {
			// It does not parse here; the server will most likely reject it
			// too, but if it runs, nothing is known about what it did.
			p.fx = []stmtFx{{scope: true, wrote: true}}
		}
		return p
	}
	for _, st := range an.Statements {
		fx, failed := cs.effects(ctx, d, searchPath, st)
		catalogFailed = catalogFailed || failed
		p.fx = append(p.fx, fx)
	}
	if p.cacheable && catalogShadowed(searchPath) {
		// query judges builtin functions by name (lower, coalesce...): a
		// schema searched before pg_catalog may hold others of those names.
		p.cacheable, p.reason = false, reasonCatalogShadowed
	}
	if p.cacheable {
		st := an.Statements[0]
		res, err := d.catalog.ResolveRelations(ctx, searchPath, st.Relations)
		switch {
		case err != nil:
			p.cacheable, p.reason, catalogFailed = false, reasonCatalog, true
			cs.catalogFailed(d, err)
		case !res.Cacheable:
			p.cacheable, p.reason = false, res.Reason
		default:
			p.tags = make([]cachecore.Tag, len(res.OIDs), len(res.OIDs)+1)
			for i, oid := range res.OIDs {
				p.tags[i] = d.tag(oid)
			}
			p.tags = append(p.tags, fingerprintTag(d, an.Fingerprint)) // for PGMEMO INVALIDATE QUERY
			for _, r := range res.Relations {
				relNames = append(relNames, r.Schema+"."+r.Name)
			}
		}
	}
	if p.cacheable {
		err := eachCode(ctx, d.catalog, searchPath, an.Statements[0], func(v invalidate.Volatility) bool {
			if !v.Cacheable {
				p.cacheable, p.reason = false, v.Reason
			}
			return p.cacheable
		})
		if err != nil {
			p.cacheable, p.reason, catalogFailed = false, reasonCatalog, true
			cs.catalogFailed(d, err)
		}
	}
	if p.cacheable {
		cs.applyRules(p, relNames)
	}
	if catalogFailed {
		p.expires = time.Now().Add(failedPlanTTL)
	}
	return p
}

// applyRules applies the configured rules to a cacheable plan.
func (cs *cacheState) applyRules(p *plan, relNames []string) {
	rules := *cs.rules.Load()
	named := false
	for _, r := range rules {
		if !r.matches(p.an.Fingerprint, relNames) {
			continue
		}
		if r.Action == RuleNever {
			p.cacheable, p.reason = false, reasonRuleNever
			return
		}
		named = true
		p.pin = p.pin || r.Action == RulePin
		if r.TTL > 0 && (p.ttl == 0 || r.TTL < p.ttl) {
			p.ttl = r.TTL
		}
	}
	if cs.opts.OptIn && !named {
		p.cacheable, p.reason = false, reasonOptIn
	}
	if h := p.an.Hints.TTL; h > 0 {
		p.ttl = h
	}
}

// setRules replaces the rules: every plan is made again and every entry
// dropped, since what may be cached, and for how long, may have changed.
func (cs *cacheState) setRules(rules []Rule) {
	rules = slices.Clone(rules)
	cs.rules.Store(&rules)
	for _, d := range cs.databases() {
		d.gen.Add(1)
		d.plans.Clear()
		d.nplans.Store(0)
	}
	cs.c.InvalidateAll()
}

// ddlByRelation lists the DDL statements whose effect on cached results is
// limited to the relations they name; other DDL (functions, types, schemas,
// DROP OWNED...) may change what any cached result would be.
var ddlByRelation = map[string]bool{
	"CreateStmt": true, "AlterTableStmt": true, "IndexStmt": true, "CreatePolicyStmt": true,
	"AlterPolicyStmt": true, "CreateTrigStmt": true, "CommentStmt": true, "CreateStatsStmt": true,
	"RenameStmt": true, "DropStmt": true, "ViewStmt": true, "RuleStmt": true, "CreateTableAsStmt": true,
	"AlterSeqStmt": true, "CreateSeqStmt": true,
}

// eventTriggers reports whether DDL in d fires event triggers of the user's
// (then, or when that cannot be told, DDL is hidden code: probe.go).
func (cs *cacheState) eventTriggers(ctx context.Context, d *dbState) bool {
	found, err := d.catalog.UserEventTriggers(ctx)
	if err != nil {
		cs.catalogFailed(d, err)
		return true
	}
	return found
}

// hiddenCode reports whether calling a function runs code the proxy cannot
// see: a VOLATILE user function (it may write, call set_config or create
// temporary tables), or one the service connection cannot find (in a schema
// it may not use, say), which is assumed to be such a function.
func hiddenCode(v invalidate.Volatility) bool {
	return !v.Found || v.Class == invalidate.Volatile && !v.Builtin
}

// eachCode calls fn with the volatility of each function st calls, each
// operator it names and each type it casts to, until fn returns false or the
// catalog fails.
func eachCode(ctx context.Context, cat *invalidate.Catalog, searchPath string, st *query.Statement, fn func(invalidate.Volatility) bool) error {
	more, err := eachLookup(ctx, cat.FunctionVolatility, searchPath, st.Functions, fn)
	if more && err == nil {
		more, err = eachLookup(ctx, cat.OperatorVolatility, searchPath, st.Operators, fn)
	}
	if more && err == nil {
		_, err = eachLookup(ctx, cat.CastVolatility, searchPath, st.Casts, fn)
	}
	return err
}

// eachLookup looks each item up and calls fn with the answer; more is false
// once fn returned false.
func eachLookup[T any](ctx context.Context, look func(context.Context, string, T) (invalidate.Volatility, error),
	searchPath string, items []T, fn func(invalidate.Volatility) bool) (more bool, err error) {
	for _, it := range items {
		v, err := look(ctx, searchPath, it)
		if err != nil {
			return false, err
		}
		if !fn(v) {
			return false, nil
		}
	}
	return true, nil
}

// effects works out what executing st does. failed reports that the catalog
// could not be asked, in which case the effects are the conservative ones.
func (cs *cacheState) effects(ctx context.Context, d *dbState, searchPath string, st *query.Statement) (fx stmtFx, failed bool) {
	fx.st = st
	if st.RunsSQL {
		fx.scope, fx.wrote, fx.hidden = true, true, true // dblink_exec(...): anything
	}
	fx.settings = len(st.Settings) > 0 || st.Discard != ""
	if fx.settings && st.Class != query.Session {
		fx.wrote = true // set_config in a query
	}
	var written []query.Relation
	for _, r := range st.Relations {
		if r.Temp {
			fx.ddl = true // a new temporary relation may shadow a permanent one
		} else if r.Write {
			written = append(written, r)
		}
	}
	switch st.Class {
	case query.Read:
		// A user function or operator may write: VOLATILE means unknown
		// side effects.
		err := eachCode(ctx, d.catalog, searchPath, st, func(v invalidate.Volatility) bool {
			if hiddenCode(v) {
				fx.scope, fx.wrote, fx.hidden = true, true, true
			}
			return true
		})
		if err != nil {
			cs.catalogFailed(d, err)
			fx.scope, fx.wrote, fx.hidden = true, true, true // the functions are not known
			return fx, true
		}
		// FOR UPDATE and friends: the transaction is about to write, and
		// what it locked is newer than the stream may yet have reported.
		fx.wrote = fx.wrote || st.Reason == query.ReasonLockingClause
		return fx, false
	case query.Session, query.Empty:
		return fx, false
	case query.TxControl:
		if st.Tx != nil && st.Tx.Kind == query.TxCommitPrepared {
			fx.scope, fx.wrote = true, true // what it commits was written earlier, maybe elsewhere
		}
		return fx, false
	case query.Write:
		fx.wrote = true
		if st.Cascade {
			// TRUNCATE ... CASCADE empties tables it does not name, and
			// fires their triggers.
			fx.scope, fx.hidden = true, true
		}
	case query.DDL:
		fx.wrote, fx.ddl = true, true
		if !ddlByRelation[st.Node] || len(written) == 0 {
			fx.scope = true
		}
	case query.Grant:
		fx.wrote = true
		if len(written) == 0 {
			fx.all = true // role membership or attributes: row-level security may depend on it
		}
	default: // SideEffects, Unknown
		switch st.Node {
		case "VariableShowStmt", "ListenStmt", "UnlistenStmt", "NotifyStmt", "FetchStmt", "ClosePortalStmt",
			"DeallocateStmt", "CheckPointStmt":
			// They change no table. A FETCH runs the cursor's query, whose
			// effects were accounted for at its DECLARE.
			return fx, false
		case "DeclareCursorStmt", "PrepareStmt", "ExplainStmt", "CopyStmt":
			// Their query may run now (EXPLAIN ANALYZE, COPY TO) or later
			// (EXECUTE is unknown anyway, FETCH belongs to the DECLARE): a
			// plain read writes nothing, anything else has unknown
			// effects. COPY FROM is a Write; COPY table TO reads the table.
			if st.Node == "CopyStmt" && st.Inner == nil {
				return fx, false
			}
			if st.Inner != nil && st.Inner.Class == query.Read {
				inner, failed := cs.effects(ctx, d, searchPath, st.Inner)
				fx.wrote, fx.scope, fx.hidden = inner.wrote, inner.scope, inner.hidden
				return fx, failed
			}
			fx.wrote, fx.scope = true, true
			return fx, false
		case "VacuumStmt", "LockStmt", "ClusterStmt", "ReindexStmt", "LoadStmt":
			// No logical change, but LOCK announces a write and the others
			// end a transaction's claim to be read-only.
			fx.wrote = true
			return fx, false
		}
		// DO, CALL, EXECUTE of an SQL-prepared statement...: code the
		// proxy cannot see.
		fx.wrote, fx.scope, fx.hidden = true, true, true
		return fx, false
	}
	if (st.Class == query.DDL || st.Class == query.Grant) && cs.eventTriggers(ctx, d) {
		fx.hidden, fx.scope = true, true // the event trigger may write any table
	}
	if err := eachCode(ctx, d.catalog, searchPath, st, func(v invalidate.Volatility) bool {
		if hiddenCode(v) {
			fx.scope, fx.hidden = true, true
		}
		return true
	}); err != nil {
		fx.scope, fx.hidden, failed = true, true, true // the functions are not known
	}
	if len(written) > 0 && !fx.scope {
		res, err := d.catalog.ResolveRelations(ctx, searchPath, written)
		if err != nil {
			cs.catalogFailed(d, err)
			fx.scope, fx.hidden = true, true
			return fx, true
		}
		for _, oid := range res.OIDs {
			fx.writes = append(fx.writes, d.tag(oid))
		}
		if res.Effects {
			// Triggers, rules or cascading foreign keys write relations
			// the statement does not name.
			fx.scope = true
		}
		// A trigger or a default may run set_config, SET ROLE... as a DO
		// block may: the session is checked afterwards (probe.go).
		fx.hidden = fx.hidden || res.Code
	}
	return fx, failed
}
