package proxy

import (
	"sync/atomic"
	"time"
)

// durationBounds are the upper bounds (seconds) of the latency histograms,
// from a hit's microseconds to a slow query's seconds.
var durationBounds = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// histogram counts durations into durationBounds buckets; safe for
// concurrent use without locks.
type histogram struct {
	counts [20]atomic.Uint64 // len(durationBounds)+1: the last is +Inf
	sumNs  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(durationBounds) && s > durationBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
}

// Histogram is a snapshot of a latency histogram, in the shape Prometheus
// expects: Buckets[i] counts the observations <= Bounds[i] (cumulative).
type Histogram struct {
	Bounds  []float64 // seconds
	Buckets []uint64  // cumulative, one per bound
	Count   uint64
	Sum     float64 // seconds
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: durationBounds, Buckets: make([]uint64, len(durationBounds))}
	var cum uint64
	for i := range durationBounds {
		cum += h.counts[i].Load()
		out.Buckets[i] = cum
	}
	out.Count = cum + h.counts[len(durationBounds)].Load()
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

// Query results for the duration histograms.
const (
	resultHit = iota
	resultMiss
	resultPassthrough
	numResults
)

var resultNames = [numResults]string{"hit", "miss", "passthrough"}

// QueryDurations returns the histograms of statement durations seen by the
// proxy, by result: "hit" (answered from the cache; the time to answer),
// "miss" (a cacheable read sent upstream) and "passthrough" (anything else
// sent upstream; the time from sending it to its completion).
func (s *Server) QueryDurations() map[string]Histogram {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	out := map[string]Histogram{}
	if cs == nil {
		return out
	}
	for i, n := range resultNames {
		out[n] = cs.durations[i].snapshot()
	}
	return out
}

// InvalidationDelays returns the histogram of delays from a commit to its
// invalidation through the replication stream, over all databases.
func (s *Server) InvalidationDelays() Histogram {
	s.mu.Lock()
	cs := s.cache
	s.mu.Unlock()
	if cs == nil {
		return (&histogram{}).snapshot()
	}
	return cs.walDelayHist.snapshot()
}
