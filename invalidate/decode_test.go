package invalidate

import (
	"encoding/binary"
	"testing"

	"github.com/jackc/pglogrepl"
)

// change encodes a pgoutput Insert, Update or Delete message of relation oid
// (with the transaction ID first inside a streamed chunk); tuples are kinds
// ('N', 'K', 'O') each followed by a one-column tuple.
func change(typ byte, stream bool, xid, oid uint32, tuples ...byte) []byte {
	b := []byte{typ}
	if stream {
		b = binary.BigEndian.AppendUint32(b, xid)
	}
	b = binary.BigEndian.AppendUint32(b, oid)
	for _, kind := range tuples {
		b = append(b, kind, 0, 1, 't')
		b = binary.BigEndian.AppendUint32(b, 2)
		b = append(b, "42"...)
	}
	return b
}

// relationOf is what pglogrepl's full decoding says of a change message.
func relationOf(t *testing.T, data []byte, stream bool) (xid, oid uint32) {
	t.Helper()
	msg, err := parseMessage(data, stream)
	if err != nil {
		t.Fatalf("ParseV2(%q): %v", data, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.InsertMessageV2:
		return m.Xid, m.RelationID
	case *pglogrepl.UpdateMessageV2:
		return m.Xid, m.RelationID
	case *pglogrepl.DeleteMessageV2:
		return m.Xid, m.RelationID
	}
	t.Fatalf("ParseV2(%q) = %T, not a change", data, msg)
	return 0, 0
}

// TestChangedRelation checks the consumer's shortcut for row changes against
// pglogrepl's decoding of the same messages.
func TestChangedRelation(t *testing.T) {
	for _, stream := range []bool{false, true} {
		for _, data := range [][]byte{
			change('I', stream, 7001, 16384, 'N'),
			change('U', stream, 7002, 16390, 'N'),
			change('U', stream, 7003, 2147483650, 'K', 'N'),
			change('U', stream, 7004, 16391, 'O', 'N'),
			change('D', stream, 7005, 16392, 'K'),
			change('D', stream, 7006, 16393, 'O'),
		} {
			xid, oid, ok := changedRelation(data, stream)
			if !ok {
				t.Fatalf("stream=%v %q: not read as a change", stream, data)
			}
			wantXid, wantOid := relationOf(t, data, stream)
			if xid != wantXid || oid != wantOid {
				t.Errorf("stream=%v %q: xid %d, relation %d; ParseV2 says %d, %d", stream, data, xid, oid, wantXid, wantOid)
			}
		}
	}
	for _, tt := range []struct {
		name   string
		data   []byte
		stream bool
	}{
		{"begin", []byte{'B', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3}, false},
		{"truncate", []byte{'T', 0, 0, 0, 1, 0, 0, 0, 0, 0x40, 0}, false},
		{"relation", []byte{'R', 0, 0, 0x40, 0}, false},
		{"insert without its tuple", change('I', false, 0, 16384), false},
		{"insert cut in its relation", []byte{'I', 0, 0, 0x40}, false},
		{"streamed insert without its relation", []byte{'I', 0, 0, 0x1b, 0x59}, true},
	} {
		if _, _, ok := changedRelation(tt.data, tt.stream); ok {
			t.Errorf("%s: read as a change", tt.name)
		}
	}
}

// TestParseMessageMalformed: pglogrepl panics on some malformed messages;
// parseMessage turns that into an error (the stream is then dropped and
// reconnected, and the process goes on).
func TestParseMessageMalformed(t *testing.T) {
	for _, data := range [][]byte{
		[]byte("D00000000"), // found by fuzzing: a streamed Delete cut short
		{'U', 0, 0, 0x40, 0, 'K', 0, 5, 't'},
	} {
		if _, err := parseMessage(data, true); err == nil {
			t.Errorf("%q: no error", data)
		}
	}
}
