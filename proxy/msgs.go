package proxy

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// Hand-written decoders for the extended-protocol messages the cache routes.
// They read raw bodies without allocating (names and texts alias the body) and
// report ok=false for a malformed body, which is then forwarded unchanged for
// the server to reject.

// cstring splits b at its first NUL.
func cstring(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// parseMsg is a decoded Parse.
type parseMsg struct {
	name, query []byte
	oids        []byte // the parameter type OIDs, 4 bytes each, as sent
}

func decodeParse(body []byte) (p parseMsg, ok bool) {
	if p.name, body, ok = cstring(body); !ok {
		return p, false
	}
	if p.query, body, ok = cstring(body); !ok || len(body) < 2 {
		return p, false
	}
	n := int(binary.BigEndian.Uint16(body))
	if len(body) != 2+4*n {
		return p, false
	}
	p.oids = body[2:]
	return p, true
}

// bindMsg is a decoded Bind.
type bindMsg struct {
	portal, stmt []byte
	// tail is everything after the names: parameter formats, values and
	// result formats, exactly as sent. It is part of the cache key.
	tail []byte
	// results holds the result format codes, 2 bytes each.
	results []byte
	// nformats and nparams count the parameter format codes and values.
	nformats, nparams int
}

func decodeBind(body []byte) (b bindMsg, ok bool) {
	if b.portal, body, ok = cstring(body); !ok {
		return b, false
	}
	if b.stmt, body, ok = cstring(body); !ok {
		return b, false
	}
	b.tail = body
	r := body
	if len(r) < 2 {
		return b, false
	}
	nf := int(binary.BigEndian.Uint16(r))
	if len(r) < 2+2*nf+2 {
		return b, false
	}
	r = r[2+2*nf:]
	np := int(binary.BigEndian.Uint16(r))
	b.nformats, b.nparams = nf, np
	r = r[2:]
	for i := 0; i < np; i++ {
		if len(r) < 4 {
			return b, false
		}
		l := int32(binary.BigEndian.Uint32(r))
		r = r[4:]
		if l < -1 {
			return b, false // -1 is NULL; the server rejects other negative lengths
		}
		if l > 0 {
			if int(l) > len(r) {
				return b, false
			}
			r = r[l:]
		}
	}
	if len(r) < 2 {
		return b, false
	}
	nr := int(binary.BigEndian.Uint16(r))
	if len(r) != 2+2*nr {
		return b, false
	}
	b.results = r[2:]
	return b, true
}

// decodeTarget decodes Describe and Close: a kind byte ('S' or 'P') and a name.
func decodeTarget(body []byte) (kind byte, name []byte, ok bool) {
	if len(body) < 2 || body[len(body)-1] != 0 {
		return 0, nil, false
	}
	kind = body[0]
	if kind != 'S' && kind != 'P' {
		return 0, nil, false
	}
	name, rest, ok := cstring(body[1:])
	return kind, name, ok && len(rest) == 0
}

func decodeExecute(body []byte) (portal []byte, maxRows uint32, ok bool) {
	portal, rest, ok := cstring(body)
	if !ok || len(rest) != 4 {
		return nil, 0, false
	}
	return portal, binary.BigEndian.Uint32(rest), true
}

// Encoders for the small messages the proxy writes itself.

var (
	msgParseComplete = []byte{'1', 0, 0, 0, 4}
	msgBindComplete  = []byte{'2', 0, 0, 0, 4}
	msgCloseComplete = []byte{'3', 0, 0, 0, 4}
	msgNoData        = []byte{'n', 0, 0, 0, 4}
)

func appendReady(b []byte, status byte) []byte {
	return append(b, 'Z', 0, 0, 0, 5, status)
}

// appendMsg appends a message of type typ whose body is built by fn.
func appendMsg(b []byte, typ byte, fn func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, typ, 0, 0, 0, 0)
	b = fn(b)
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-1))
	return b
}

func appendParse(b []byte, name, query, oids []byte) []byte {
	return appendMsg(b, 'P', func(b []byte) []byte {
		b = append(append(b, name...), 0)
		b = append(append(b, query...), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(oids)/4))
		return append(b, oids...)
	})
}

func appendSync(b []byte) []byte { return append(b, 'S', 0, 0, 0, 4) }

// appendQuery appends a simple-protocol Query of sql.
func appendQuery(b []byte, sql string) []byte {
	return appendMsg(b, 'Q', func(b []byte) []byte { return append(append(b, sql...), 0) })
}

// appendExecute appends an Execute of portal with no row limit.
func appendExecute(b []byte, portal []byte) []byte {
	return appendMsg(b, 'E', func(b []byte) []byte {
		b = append(append(b, portal...), 0)
		return append(b, 0, 0, 0, 0)
	})
}

// appendRowDescription appends a RowDescription of text columns named cols.
func appendRowDescription(b []byte, cols ...string) []byte {
	return appendMsg(b, 'T', func(b []byte) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
		for _, c := range cols {
			b = append(append(b, c...), 0)
			b = binary.BigEndian.AppendUint32(b, 0)      // table OID
			b = binary.BigEndian.AppendUint16(b, 0)      // column number
			b = binary.BigEndian.AppendUint32(b, 25)     // text
			b = binary.BigEndian.AppendUint16(b, 0xFFFF) // typlen -1
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
			b = binary.BigEndian.AppendUint16(b, 0) // text format
		}
		return b
	})
}

func appendDataRow(b []byte, vals ...string) []byte {
	return appendMsg(b, 'D', func(b []byte) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
		for _, v := range vals {
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
		return b
	})
}

func appendCommandComplete(b []byte, tag string) []byte {
	return appendMsg(b, 'C', func(b []byte) []byte { return append(append(b, tag...), 0) })
}

func appendParamDescription(b []byte, n int) []byte {
	return appendMsg(b, 't', func(b []byte) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		for i := 0; i < n; i++ {
			b = binary.BigEndian.AppendUint32(b, 0)
		}
		return b
	})
}

// appendPortalRowDescription appends rowDesc, a statement's RowDescription
// (every format code 0), with the format codes a Bind's result formats give
// its portal: none means text, one applies to every column, otherwise one per
// column. It returns ok=false when the formats do not fit the columns (the
// server would reject the Bind) or rowDesc is malformed.
func appendPortalRowDescription(b, rowDesc, results []byte) ([]byte, bool) {
	nres := len(results) / 2
	if nres == 0 || rowDesc[0] != 'T' {
		return append(b, rowDesc...), true
	}
	start := len(b)
	b = append(b, rowDesc...)
	body := b[start+5:]
	if len(body) < 2 {
		return b[:start], false
	}
	ncol := int(binary.BigEndian.Uint16(body))
	if nres != 1 && nres != ncol {
		return b[:start], false
	}
	p := body[2:]
	for i := 0; i < ncol; i++ {
		j := bytes.IndexByte(p, 0)
		if j < 0 || len(p) < j+1+18 {
			return b[:start], false
		}
		f := p[j+1+16 : j+1+18]
		src := results[0:2]
		if nres > 1 {
			src = results[2*i : 2*i+2]
		}
		copy(f, src)
		p = p[j+1+18:]
	}
	return b, true
}

// textFormatRowDescription returns a copy of a RowDescription with every
// format code set to 0 (text): what Describe of the statement returns.
func textFormatRowDescription(raw []byte) []byte {
	out := append([]byte(nil), raw...)
	if len(out) < 7 || out[0] != 'T' {
		return out
	}
	ncol := int(binary.BigEndian.Uint16(out[5:]))
	p := out[7:]
	for i := 0; i < ncol; i++ {
		j := bytes.IndexByte(p, 0)
		if j < 0 || len(p) < j+1+18 {
			return out
		}
		p[j+1+16], p[j+1+17] = 0, 0
		p = p[j+1+18:]
	}
	return out
}

// commandTag returns the tag of a CommandComplete body.
func commandTag(body []byte) string {
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	return string(body)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
