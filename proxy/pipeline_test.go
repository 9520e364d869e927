package proxy

import "testing"

// TestPipelineOwedReadyForQuery replays client and server message sequences
// and checks how many ReadyForQuery messages the server still owes.
func TestPipelineOwedReadyForQuery(t *testing.T) {
	tests := []struct {
		name   string
		client string // message types the client sent, in order
		server string // message types the server answered, in order
		owed   int
	}{
		{"simple query answered", "Q", "TDCZ", 0},
		{"simple query pending", "Q", "TD", 1},
		{"two pipelined queries, one answered", "QQ", "TDCZ", 1},
		{"extended batch", "PBDES", "12TDCZ", 0},
		{"extended batch awaiting Sync's answer", "PBDES", "12TDC", 1},
		{"error skips to Sync, including Query and FunctionCall", "PBEQFS", "12EZ", 0},
		{"error in a Query does not skip", "QQ", "EZ", 1},
		{"three batches, error in the middle one", "PBESPBESPBES", "12CZ12EZ12CZ", 0},
		{"flush without sync", "PBEH", "12C", 0},
		{"function call", "F", "VZ", 0},
		{"extended COPY IN: the Sync after Execute is ignored", "PBESddcS", "12GCZ", 0},
		{"extended COPY IN before the data arrives", "PBES", "12G", 1},
		{"COPY IN by Query, Sync during data ignored", "QdSdc", "GCZ", 0},
		{"CopyFail in extended mode", "PBESfS", "12GEZ", 0},
		{"describe statement", "PDS", "1tTZ", 0},
		{"describe statement without rows", "PDS", "1tnZ", 0},
		{"close", "CS", "3Z", 0},
		{"notices and notifications change nothing", "Q", "NATCZA", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pipeline
			for i := 0; i < len(tt.client); i++ {
				p.push(tt.client[i])
			}
			for i := 0; i < len(tt.server); i++ {
				p.onServer(tt.server[i])
			}
			if p.owed != tt.owed {
				t.Fatalf("owed = %d, want %d (queue %+v from %d)", p.owed, tt.owed, p.q, p.head)
			}
			if p.idle() != (tt.owed == 0) {
				t.Fatalf("idle() = %v with owed %d", p.idle(), p.owed)
			}
		})
	}
}

func TestStateTransitions(t *testing.T) {
	fatal := []byte("SFATAL\x00VFATAL\x00C57P01\x00Mbye\x00\x00")
	errorMsg := []byte("SERROR\x00VERROR\x00C22012\x00Mdivision by zero\x00\x00")
	tests := []struct {
		from state
		typ  byte
		body []byte
		want state
	}{
		{stateAuth, 'Z', []byte("I"), stateIdle},
		{stateIdle, 'Z', []byte("T"), stateInTx},
		{stateInTx, 'Z', []byte("E"), stateFailedTx},
		{stateFailedTx, 'Z', []byte("I"), stateIdle},
		{stateIdle, 'G', nil, stateCopyIn},
		{stateIdle, 'H', nil, stateCopyOut},
		{stateIdle, 'W', nil, stateCopyBoth},
		{stateCopyIn, 'Z', []byte("I"), stateIdle},
		{stateIdle, 'E', errorMsg, stateIdle},
		{stateIdle, 'E', fatal, stateClosed},
		{stateClosed, 'Z', []byte("I"), stateClosed},
		{stateIdle, 'D', []byte{0, 0}, stateIdle},
		{stateIdle, 'Z', []byte("?"), stateIdle},
	}
	for _, tt := range tests {
		if got := transition(tt.from, tt.typ, tt.body); got != tt.want {
			t.Errorf("transition(%v, %q) = %v, want %v", tt.from, tt.typ, got, tt.want)
		}
	}
}
