package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzDecoders checks the hand-written decoders of the extended-protocol
// messages against pgproto3's: a body the proxy's decoder accepts must decode
// there too, to the same fields, so that what the proxy answers locally or
// keys on is what the server would read.
func FuzzDecoders(f *testing.F) {
	bind := (&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", ParameterFormatCodes: []int16{1},
		Parameters: [][]byte{[]byte("42"), nil}, ResultFormatCodes: []int16{0, 1}})
	b, _ := bind.Encode(nil)
	f.Add(byte(0), b[5:])
	p, _ := (&pgproto3.Parse{Name: "s", Query: "SELECT $1", ParameterOIDs: []uint32{23}}).Encode(nil)
	f.Add(byte(1), p[5:])
	d, _ := (&pgproto3.Describe{ObjectType: 'S', Name: "s"}).Encode(nil)
	f.Add(byte(2), d[5:])
	e, _ := (&pgproto3.Execute{Portal: "p", MaxRows: 10}).Encode(nil)
	f.Add(byte(3), e[5:])
	f.Add(byte(0), []byte("\x00\x00\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00"))
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		switch typ % 4 {
		case 0:
			bm, ok := decodeBind(body)
			if !ok {
				return
			}
			var want pgproto3.Bind
			if err := want.Decode(body); err != nil {
				t.Fatalf("decodeBind accepted %q; pgproto3: %v", body, err)
			}
			if string(bm.portal) != want.DestinationPortal || string(bm.stmt) != want.PreparedStatement ||
				bm.nformats != len(want.ParameterFormatCodes) || bm.nparams != len(want.Parameters) ||
				len(bm.results) != 2*len(want.ResultFormatCodes) || !bytes.HasSuffix(body, bm.tail) {
				t.Fatalf("decodeBind(%q) = %+v; pgproto3 %+v", body, bm, want)
			}
			for i, c := range want.ResultFormatCodes {
				if int16(binary.BigEndian.Uint16(bm.results[2*i:])) != c {
					t.Fatalf("result format %d: %x, pgproto3 %d", i, bm.results, c)
				}
			}
		case 1:
			pm, ok := decodeParse(body)
			if !ok {
				return
			}
			var want pgproto3.Parse
			if err := want.Decode(body); err != nil {
				t.Fatalf("decodeParse accepted %q; pgproto3: %v", body, err)
			}
			if string(pm.name) != want.Name || string(pm.query) != want.Query || len(pm.oids) != 4*len(want.ParameterOIDs) {
				t.Fatalf("decodeParse(%q) = %+v; pgproto3 %+v", body, pm, want)
			}
		case 2:
			kind, name, ok := decodeTarget(body)
			if !ok {
				return
			}
			var want pgproto3.Describe
			if err := want.Decode(body); err != nil {
				t.Fatalf("decodeTarget accepted %q; pgproto3: %v", body, err)
			}
			if kind != want.ObjectType || string(name) != want.Name {
				t.Fatalf("decodeTarget(%q) = %c %q; pgproto3 %+v", body, kind, name, want)
			}
		case 3:
			portal, maxRows, ok := decodeExecute(body)
			if !ok {
				return
			}
			var want pgproto3.Execute
			if err := want.Decode(body); err != nil {
				t.Fatalf("decodeExecute accepted %q; pgproto3: %v", body, err)
			}
			if string(portal) != want.Portal || maxRows != want.MaxRows {
				t.Fatalf("decodeExecute(%q) = %q %d; pgproto3 %+v", body, portal, maxRows, want)
			}
		}
	})
}
