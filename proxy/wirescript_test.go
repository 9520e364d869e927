package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgmemo/pgmemo/internal/pgtest"
)

// Wire scripts: sequences of protocol messages kept as JSON in testdata/wire,
// played against a server by a raw client that records every backend message
// it receives (golden_test.go compares the recordings).
//
// A script file looks like this:
//
//	{
//	  "comment": "what the script covers",
//	  "startup": {"protocol": "3.2", "params": {"application_name": "x"}},
//	  "steps": [
//	    {"send": [{"Type": "Query", "String": "SELECT 1"}], "until": "ReadyForQuery"},
//	    {"side": "NOTIFY chan, 'payload'"},
//	    {"until": "NotificationResponse"}
//	  ]
//	}
//
// "startup" is optional: the StartupMessage always carries user=postgres (trust
// authentication), the run's database and TimeZone=UTC (so recordings do
// not depend on the machine's zone), and then "params", which may override
// them; "protocol" is "major.minor" (default 3.0). The packet is built byte by
// byte, so any minor version can be requested.
//
// Each step writes its "send" messages in one write (a pipeline), then reads
// backend messages until "count" (default 1) messages of type "until" arrived;
// "until": "ConnectionClosed" reads until the server closes the connection. A
// "side" step runs SQL on a second connection to the same database and waits
// for it to finish. The runner adds the startup as the first step and, unless
// the script ended with the connection closed, a Terminate as the last one, so
// a stray message anywhere shows up in the recording.
//
// Scripts may create objects only in the public schema (no roles, schemas or
// databases, no ALTER DATABASE or ROLE): each run starts with that schema
// emptied (see wireDBPool in golden_test.go).
//
// Frontend messages are written as pgproto3 marshals them to JSON, with "Type"
// naming the message: Query{String}, Parse{Name, Query, ParameterOIDs},
// Bind{DestinationPortal, PreparedStatement, ParameterFormatCodes, Parameters,
// ResultFormatCodes} (each parameter {"text": "..."}, {"binary": "hex"} or null),
// Describe{ObjectType "S"|"P", Name}, Execute{Portal, MaxRows},
// Close{ObjectType, Name}, Sync, Flush, Terminate, CopyData{Text or hex Data},
// CopyDone, CopyFail{Message} and FunctionCall{Function, ArgFormatCodes,
// Arguments (like Bind's Parameters), ResultFormatCode}.

// wireScript is one script file.
type wireScript struct {
	Comment string       `json:"comment"`
	Startup *wireStartup `json:"startup,omitempty"`
	Steps   []wireStep   `json:"steps"`
}

// wireStartup customises the StartupMessage.
type wireStartup struct {
	Protocol string            `json:"protocol,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
}

// wireStep is one step of a script, in the format described at the top of
// this file.
type wireStep struct {
	Comment string            `json:"comment,omitempty"`
	Send    []json.RawMessage `json:"send,omitempty"`
	Side    string            `json:"side,omitempty"`
	Until   string            `json:"until,omitempty"`
	Count   int               `json:"count,omitempty"`

	msgs []pgproto3.FrontendMessage // Send, decoded
	raw  []byte                     // bytes to write instead of msgs (the startup packet)
}

// wireClosed is the pseudo message type of a connection closed by the server.
const wireClosed = "ConnectionClosed"

// wireStepTimeout bounds each step: a missing message fails the read rather
// than hanging the test.
const wireStepTimeout = 5 * time.Second

// loadWireScript reads and validates a script file.
func loadWireScript(path string) (*wireScript, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s wireScript
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Steps) == 0 {
		return nil, fmt.Errorf("%s: no steps", path)
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		if err := st.validate(); err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", path, i+1, err)
		}
	}
	return &s, nil
}

// validate checks a step read from a script and decodes its messages.
func (st *wireStep) validate() error {
	if st.Side != "" {
		if len(st.Send) > 0 || st.Until != "" {
			return errors.New(`a "side" step cannot also send or read`)
		}
		return nil
	}
	if len(st.Send) == 0 && st.Until == "" {
		return errors.New(`a step needs "send", "until" or "side"`)
	}
	if st.Count < 0 || st.Count > 0 && st.Until == "" {
		return errors.New(`"count" needs "until" and must be positive`)
	}
	if st.Until != "" && st.Until != wireClosed && !wireBackendTypes[st.Until] {
		return fmt.Errorf("unknown backend message type %q in \"until\"", st.Until)
	}
	for j, raw := range st.Send {
		m, err := wireDecodeFrontend(raw)
		if err != nil {
			return fmt.Errorf("message %d: %w", j+1, err)
		}
		st.msgs = append(st.msgs, m)
	}
	return nil
}

// wireBackendTypes are the names a step may wait for.
var wireBackendTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, msg := range []pgproto3.BackendMessage{
		&pgproto3.AuthenticationOk{}, &pgproto3.BackendKeyData{}, &pgproto3.BindComplete{},
		&pgproto3.CloseComplete{}, &pgproto3.CommandComplete{}, &pgproto3.CopyBothResponse{},
		&pgproto3.CopyData{}, &pgproto3.CopyDone{}, &pgproto3.CopyInResponse{},
		&pgproto3.CopyOutResponse{}, &pgproto3.DataRow{}, &pgproto3.EmptyQueryResponse{},
		&pgproto3.ErrorResponse{}, &pgproto3.FunctionCallResponse{}, &pgproto3.NegotiateProtocolVersion{},
		&pgproto3.NoData{}, &pgproto3.NoticeResponse{}, &pgproto3.NotificationResponse{},
		&pgproto3.ParameterDescription{}, &pgproto3.ParameterStatus{}, &pgproto3.ParseComplete{},
		&pgproto3.PortalSuspended{}, &pgproto3.ReadyForQuery{}, &pgproto3.RowDescription{},
	} {
		m[wireTypeName(msg)] = true
	}
	return m
}()

// wireTypeName is a message's pgproto3 type name, as its MarshalJSON spells it.
func wireTypeName(m any) string { return reflect.TypeOf(m).Elem().Name() }

// wireFrontendDecoders decode the JSON form of each frontend message a script may
// send, with the fields each accepts besides "Type".
var wireFrontendDecoders = map[string]struct {
	fields []string
	decode func(json.RawMessage) (pgproto3.FrontendMessage, error)
}{
	"Query":        {[]string{"String"}, wireDecodeAs[pgproto3.Query]},
	"Parse":        {[]string{"Name", "Query", "ParameterOIDs"}, wireDecodeAs[pgproto3.Parse]},
	"Bind":         {[]string{"DestinationPortal", "PreparedStatement", "ParameterFormatCodes", "Parameters", "ResultFormatCodes"}, wireDecodeAs[pgproto3.Bind]},
	"Describe":     {[]string{"ObjectType", "Name"}, wireDecodeAs[pgproto3.Describe]},
	"Execute":      {[]string{"Portal", "MaxRows"}, wireDecodeAs[pgproto3.Execute]},
	"Close":        {[]string{"ObjectType", "Name"}, wireDecodeAs[pgproto3.Close]},
	"Sync":         {nil, wireDecodeAs[pgproto3.Sync]},
	"Flush":        {nil, wireDecodeAs[pgproto3.Flush]},
	"Terminate":    {nil, wireDecodeAs[pgproto3.Terminate]},
	"CopyDone":     {nil, wireDecodeAs[pgproto3.CopyDone]},
	"CopyFail":     {[]string{"Message"}, wireDecodeAs[pgproto3.CopyFail]},
	"CopyData":     {[]string{"Text", "Data"}, wireDecodeCopyData},
	"FunctionCall": {[]string{"Function", "ArgFormatCodes", "Arguments", "ResultFormatCode"}, wireDecodeFunctionCall},
}

// wireDecodeFrontend decodes one frontend message of a script, rejecting
// unknown types and fields (a typo must not silently send an empty message).
func wireDecodeFrontend(raw json.RawMessage) (pgproto3.FrontendMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	var typ string
	if err := json.Unmarshal(fields["Type"], &typ); err != nil {
		return nil, fmt.Errorf(`message without a "Type": %s`, raw)
	}
	d, ok := wireFrontendDecoders[typ]
	if !ok {
		return nil, fmt.Errorf("unknown frontend message type %q", typ)
	}
	for name := range fields {
		if name != "Type" && !slices.Contains(d.fields, name) {
			return nil, fmt.Errorf("%s has no field %q", typ, name)
		}
	}
	return d.decode(raw)
}

// wireDecodeAs decodes raw into a pgproto3 message with its own JSON decoding (or
// encoding/json's, for the messages without one).
func wireDecodeAs[T any, PT interface {
	*T
	pgproto3.FrontendMessage
}](raw json.RawMessage) (pgproto3.FrontendMessage, error) {
	m := PT(new(T))
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, err
	}
	return m, nil
}

// wireDecodeCopyData accepts {"Text": "..."} for readable data or
// {"Data": "hex"}.
func wireDecodeCopyData(raw json.RawMessage) (pgproto3.FrontendMessage, error) {
	var v struct{ Text, Data *string }
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch {
	case v.Text != nil && v.Data == nil:
		return &pgproto3.CopyData{Data: []byte(*v.Text)}, nil
	case v.Data != nil && v.Text == nil:
		b, err := hex.DecodeString(*v.Data)
		return &pgproto3.CopyData{Data: b}, err
	}
	return nil, errors.New(`CopyData needs exactly one of "Text" and "Data"`)
}

// wireDecodeFunctionCall decodes a FunctionCall, whose arguments are written like
// Bind parameters.
func wireDecodeFunctionCall(raw json.RawMessage) (pgproto3.FrontendMessage, error) {
	var v struct {
		Function         uint32
		ArgFormatCodes   []uint16
		Arguments        []map[string]string
		ResultFormatCode uint16
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	m := &pgproto3.FunctionCall{Function: v.Function, ArgFormatCodes: v.ArgFormatCodes, ResultFormatCode: v.ResultFormatCode}
	for i, a := range v.Arguments {
		switch {
		case a == nil:
			m.Arguments = append(m.Arguments, nil)
		case len(a) != 1:
			return nil, fmt.Errorf(`argument %d: want {"text": ...}, {"binary": ...} or null`, i+1)
		default:
			b, err := wireArgBytes(a)
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i+1, err)
			}
			m.Arguments = append(m.Arguments, b)
		}
	}
	return m, nil
}

// wireArgBytes decodes {"text": ...} or {"binary": hex}.
func wireArgBytes(a map[string]string) ([]byte, error) {
	if t, ok := a["text"]; ok {
		return []byte(t), nil
	}
	if h, ok := a["binary"]; ok {
		return hex.DecodeString(h)
	}
	return nil, errors.New(`want "text" or "binary"`)
}

// startupStep returns the implicit first step: the StartupMessage for db,
// waiting for the first ReadyForQuery (or the server closing the connection
// after a FATAL error; the run stops there either way).
func (s *wireScript) startupStep(db string) (wireStep, error) {
	major, minor := 3, 0
	params := map[string]string{"user": pgtest.SuperUser, "database": db, "TimeZone": "UTC"}
	shown := map[string]string{"user": pgtest.SuperUser, "database": "<test database>", "TimeZone": "UTC"}
	if s.Startup != nil {
		if p := s.Startup.Protocol; p != "" {
			a, b, ok := strings.Cut(p, ".")
			var err1, err2 error
			major, err1 = strconv.Atoi(a)
			minor, err2 = strconv.Atoi(b)
			if !ok || err1 != nil || err2 != nil || major < 0 || major > 0xffff || minor < 0 || minor > 0xffff {
				return wireStep{}, fmt.Errorf("bad startup protocol %q", p)
			}
		}
		for k, v := range s.Startup.Params {
			params[k], shown[k] = v, v
		}
	}
	// The packet: length, version, then name/value pairs in a stable order
	// (user and database first, as libpq does) and a final zero byte.
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "user" && k != "database" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = append([]string{"user", "database"}, keys...)
	pkt := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(pkt[4:], uint32(major)<<16|uint32(minor))
	for _, k := range keys {
		pkt = append(append(append(append(pkt, k...), 0), params[k]...), 0)
	}
	pkt = append(pkt, 0)
	binary.BigEndian.PutUint32(pkt, uint32(len(pkt)))

	desc, err := wireMarshal(struct {
		Type            string
		ProtocolVersion string
		Parameters      map[string]string
	}{"StartupMessage", fmt.Sprintf("%d.%d", major, minor), shown})
	if err != nil {
		return wireStep{}, err
	}
	return wireStep{Comment: "(runner) startup", Send: []json.RawMessage{desc}, Until: "ReadyForQuery", raw: pkt}, nil
}

// wireTerminateStep is the implicit last step of a script that left the
// connection open.
func wireTerminateStep() wireStep {
	return wireStep{
		Comment: "(runner) Terminate, reading anything still pending until the server closes",
		Send:    []json.RawMessage{json.RawMessage(`{"Type":"Terminate"}`)},
		msgs:    []pgproto3.FrontendMessage{&pgproto3.Terminate{}},
		Until:   wireClosed,
	}
}

// wireTranscript is what one run of a script received: per step, each backend
// message rendered as one line of JSON, in two forms (see wireRecorder).
type wireTranscript struct {
	Steps []wireStepResult
}

// wireStepResult is the record of one step.
type wireStepResult struct {
	Step     wireStep
	Strict   []string // compared between direct and proxy
	Portable []string // also free of machine-specific values; kept in the golden file
}

// runWireScript plays s against the PostgreSQL-speaking server at addr, in
// database db, and returns what it received. An error means the run could not
// go on (a read timed out, a write failed); the transcript up to that point is
// returned with it, its last step ending in a pseudo message that says why.
func runWireScript(ctx context.Context, s *wireScript, addr, db string) (*wireTranscript, error) {
	first, err := s.startupStep(db)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{Timeout: wireStepTimeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := &wireRecorder{br: bufio.NewReader(conn)}
	r.dec = pgproto3.NewFrontend(&r.feed, io.Discard)

	steps := append(append([]wireStep{first}, s.Steps...), wireTerminateStep())
	tr := &wireTranscript{}
	for i, st := range steps {
		if r.closed {
			break // the server ended the session: by the script's Terminate, or early (the recording shows where)
		}
		res := wireStepResult{Step: st}
		err := r.play(ctx, conn, db, st, &res)
		tr.Steps = append(tr.Steps, res)
		if err != nil {
			return tr, fmt.Errorf("step %d: %w", i, err)
		}
	}
	return tr, nil
}

// wireRecorder reads and records the backend messages of one connection. It
// frames messages itself, so that a close at a message boundary (io.EOF) is
// told apart from a truncated message, and hands each one to a
// pgproto3.Frontend for decoding.
type wireRecorder struct {
	br     *bufio.Reader
	feed   bytes.Buffer       // exactly one framed message at a time
	dec    *pgproto3.Frontend // decodes from feed
	closed bool

	ownPID  uint32            // ProcessID of this connection's BackendKeyData
	userOID map[uint32]string // user object OIDs in order of appearance
}

// play runs one step and appends what it received to res.
func (r *wireRecorder) play(ctx context.Context, conn net.Conn, db string, st wireStep, res *wireStepResult) error {
	if st.Side != "" {
		sctx, cancel := context.WithTimeout(ctx, wireStepTimeout)
		defer cancel()
		if err := cluster.Exec(sctx, db, st.Side); err != nil {
			return fmt.Errorf("side SQL %q: %w", st.Side, err)
		}
		return nil
	}
	out := slices.Clone(st.raw)
	for _, m := range st.msgs {
		var err error
		if out, err = m.Encode(out); err != nil {
			return err
		}
	}
	conn.SetDeadline(time.Now().Add(wireStepTimeout))
	if len(out) > 0 {
		if _, err := conn.Write(out); err != nil {
			r.note(res, "WriteError", err)
			return err
		}
	}
	want := max(st.Count, 1)
	for seen := 0; st.Until != "" && seen < want; {
		msg, err := r.next()
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			r.closed = true
			typ := wireClosed
			if !errors.Is(err, io.EOF) {
				typ = "ConnectionReset"
			}
			res.Strict = append(res.Strict, `{"Type":"`+typ+`"}`)
			res.Portable = append(res.Portable, `{"Type":"`+typ+`"}`)
			return nil // whether expected or not: the run ends here, the recording shows it
		}
		if err != nil {
			r.note(res, "ReadError", err)
			return err
		}
		strict, portable, err := r.render(msg)
		if err != nil {
			return err
		}
		res.Strict = append(res.Strict, strict)
		res.Portable = append(res.Portable, portable)
		if wireTypeName(msg) == st.Until {
			seen++
		}
	}
	return nil
}

// note records a failure as a pseudo message, so the diff shows where a run
// broke off. Addresses are left out to keep it comparable.
func (r *wireRecorder) note(res *wireStepResult, typ string, err error) {
	what := "error"
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		what = "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF):
		what = "connection closed in the middle of a message"
	case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET):
		what = "connection reset"
	}
	line := fmt.Sprintf(`{"Type":%q,"Error":%q}`, typ, what)
	res.Strict = append(res.Strict, line)
	res.Portable = append(res.Portable, line)
}

// next reads one backend message. io.EOF means the server closed the
// connection at a message boundary. The message is only valid until the next
// call (pgproto3 reuses its structs): render it at once.
func (r *wireRecorder) next() (pgproto3.BackendMessage, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r.br, hdr[:]); err != nil {
		return nil, err // io.EOF only if no byte was read
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:])))
	if n < 4 || n > 1<<30 {
		return nil, fmt.Errorf("bad message length %d for type %q", n, hdr[0])
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r.br, body); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	r.feed.Reset()
	r.feed.Write(hdr[:])
	r.feed.Write(body)
	return r.dec.Receive()
}

// wireFirstUserOID is FirstNormalObjectId: OIDs from here on belong to objects
// created after initdb, such as the tables a script creates.
const wireFirstUserOID = 16384

// render turns a message into two JSON lines: strict, compared between the
// direct and the proxied run, and portable, kept in the golden file.
//
// Strict rendering is pgproto3's MarshalJSON with only these changes, each for
// values that legitimately differ between two connections:
//   - BackendKeyData: the ProcessID and SecretKey values (only the secret's
//     length is kept); the proxy issues its own key by design, to map cancel
//     requests.
//   - NotificationResponse: the PID is "<own pid>" when it is this
//     connection's BackendKeyData ProcessID (a self-notification), else
//     "<other pid>".
//   - RowDescription: table and type OIDs of user objects (each run creates
//     its tables anew, so they differ) become "<user oid N>", numbered in
//     order of appearance.
//
// For readability, ErrorResponse and NoticeResponse omit empty fields,
// NoticeResponse is named as such (pgproto3 has no MarshalJSON for it),
// CopyData that is valid UTF-8 text is shown as Text rather than hex, and a
// NULL FunctionCallResponse result as null rather than empty text.
//
// The portable form further hides what depends on the PostgreSQL build rather
// than on the protocol: the server_version value (major version only) and the
// source line numbers of errors and notices.
func (r *wireRecorder) render(msg pgproto3.BackendMessage) (strict, portable string, err error) {
	var v, pv any = msg, nil
	switch m := msg.(type) {
	case *pgproto3.BackendKeyData:
		r.ownPID = m.ProcessID
		v = struct{ Type, ProcessID, SecretKey string }{"BackendKeyData", "<pid>", fmt.Sprintf("<%d bytes>", len(m.SecretKey))}
	case *pgproto3.NotificationResponse:
		pid := "<other pid>"
		if m.PID == r.ownPID {
			pid = "<own pid>"
		}
		v = struct{ Type, PID, Channel, Payload string }{"NotificationResponse", pid, m.Channel, m.Payload}
	case *pgproto3.RowDescription:
		v = r.rowDescription(m)
	case *pgproto3.ErrorResponse:
		v, pv = wireNoticeForms("ErrorResponse", m)
	case *pgproto3.NoticeResponse:
		v, pv = wireNoticeForms("NoticeResponse", (*pgproto3.ErrorResponse)(m))
	case *pgproto3.FunctionCallResponse:
		if m.Result == nil { // pgproto3 would show a NULL result as empty text
			v = struct {
				Type   string
				Result *string
			}{"FunctionCallResponse", nil}
		}
	case *pgproto3.CopyData:
		if utf8.Valid(m.Data) {
			v = struct{ Type, Text string }{"CopyData", string(m.Data)}
		}
	case *pgproto3.ParameterStatus:
		if m.Name == "server_version" {
			major, _, _ := strings.Cut(m.Value, ".")
			pv = struct{ Type, Name, Value string }{"ParameterStatus", m.Name, major + ".x"}
		}
	}
	b, err := wireMarshal(v)
	if err != nil {
		return "", "", err
	}
	strict = string(b)
	if pv == nil {
		return strict, strict, nil
	}
	pb, err := wireMarshal(pv)
	return strict, string(pb), err
}

// wireMarshal is json.Marshal without escaping <, > and &, which keeps the
// placeholders readable.
func wireMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// wireNotice is ErrorResponse's MarshalJSON layout without the empty fields.
type wireNotice struct {
	Type                string
	Severity            string            `json:",omitempty"`
	SeverityUnlocalized string            `json:",omitempty"`
	Code                string            `json:",omitempty"`
	Message             string            `json:",omitempty"`
	Detail              string            `json:",omitempty"`
	Hint                string            `json:",omitempty"`
	Position            int32             `json:",omitempty"`
	InternalPosition    int32             `json:",omitempty"`
	InternalQuery       string            `json:",omitempty"`
	Where               string            `json:",omitempty"`
	SchemaName          string            `json:",omitempty"`
	TableName           string            `json:",omitempty"`
	ColumnName          string            `json:",omitempty"`
	DataTypeName        string            `json:",omitempty"`
	ConstraintName      string            `json:",omitempty"`
	File                string            `json:",omitempty"`
	Line                int32             `json:",omitempty"`
	Routine             string            `json:",omitempty"`
	UnknownFields       map[string]string `json:",omitempty"`
}

// wireNoticeForms returns the strict and the portable (no source line) rendering
// of an ErrorResponse or NoticeResponse.
func wireNoticeForms(typ string, e *pgproto3.ErrorResponse) (strict, portable *wireNotice) {
	n := wireNotice{
		Type: typ, Severity: e.Severity, SeverityUnlocalized: e.SeverityUnlocalized, Code: e.Code,
		Message: e.Message, Detail: e.Detail, Hint: e.Hint, Position: e.Position,
		InternalPosition: e.InternalPosition, InternalQuery: e.InternalQuery, Where: e.Where,
		SchemaName: e.SchemaName, TableName: e.TableName, ColumnName: e.ColumnName,
		DataTypeName: e.DataTypeName, ConstraintName: e.ConstraintName, File: e.File,
		Line: e.Line, Routine: e.Routine,
	}
	for k, v := range e.UnknownFields {
		if n.UnknownFields == nil {
			n.UnknownFields = map[string]string{}
		}
		n.UnknownFields[string(k)] = v
	}
	p := n
	p.Line = 0
	return &n, &p
}

// rowDescription renders a RowDescription like pgproto3 does, with user OIDs
// replaced by their order of appearance.
func (r *wireRecorder) rowDescription(m *pgproto3.RowDescription) any {
	type field struct {
		Name                 string
		TableOID             any
		TableAttributeNumber uint16
		DataTypeOID          any
		DataTypeSize         int16
		TypeModifier         int32
		Format               int16
	}
	fields := make([]field, len(m.Fields))
	for i, f := range m.Fields {
		fields[i] = field{string(f.Name), r.oid(f.TableOID), f.TableAttributeNumber, r.oid(f.DataTypeOID), f.DataTypeSize, f.TypeModifier, f.Format}
	}
	return struct {
		Type   string
		Fields []field
	}{"RowDescription", fields}
}

// oid returns a system OID as is and a user OID as a stable placeholder.
func (r *wireRecorder) oid(o uint32) any {
	if o < wireFirstUserOID {
		return o
	}
	if r.userOID == nil {
		r.userOID = map[uint32]string{}
	}
	name, ok := r.userOID[o]
	if !ok {
		name = fmt.Sprintf("<user oid %d>", len(r.userOID)+1)
		r.userOID[o] = name
	}
	return name
}

// wireDiff returns a unified-style diff of two line lists (- a, + b) with up
// to three lines of context around each change, or "" if they are equal.
func wireDiff(a, b []string) string {
	if slices.Equal(a, b) {
		return ""
	}
	// Longest common subsequence table, fine for transcripts of a few hundred lines.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var ops []line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, line{' ', a[i]})
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, line{'-', a[i]})
			i++
		default:
			ops = append(ops, line{'+', b[j]})
			j++
		}
	}
	const context = 3
	var sb strings.Builder
	last := -1
	for k, op := range ops {
		near := false
		for d := max(0, k-context); d <= min(len(ops)-1, k+context); d++ {
			if ops[d].op != ' ' {
				near = true
				break
			}
		}
		if !near {
			continue
		}
		if last >= 0 && k > last+1 {
			sb.WriteString("  ...\n")
		}
		last = k
		sb.WriteByte(op.op)
		sb.WriteByte(' ')
		sb.WriteString(op.text)
		sb.WriteByte('\n')
	}
	return sb.String()
}
