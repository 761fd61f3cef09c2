package rules

import (
	"context"
	"errors"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// ErrHeapBudget is the cause of a run stopped by a HeapGuard.
var ErrHeapBudget = errors.New("the process heap passed its budget while the run was the longest in flight")

// The runtime metrics a HeapGuard reads: the bytes of heap objects, live
// or not yet swept, cheap to read at any time; and the bytes the last
// collection found live.
const (
	heapObjects = "/memory/classes/heap/objects:bytes"
	heapLive    = "/gc/heap/live:bytes"
)

// HeapGuard bounds what Lua runs can make the process hold. gopher-lua has
// no allocation hook, so no run can be charged for its own tables; the
// guard reads the process's heap instead, every interval while runs are in
// flight, and when it passes the budget it stops the run that has been in
// flight longest, if a garbage collection does not bring the heap back
// under it. Rules finish in microseconds; the run still going when the
// heap holds hundreds of MiB more is the one holding them. The stopped
// run ends at its next Lua instruction, like a deadline, with ErrHeapBudget
// as its cause. The guard then waits for that run to end (at most a
// second: a run inside a long Go call ends later) and collects garbage
// before it judges again, so that one attack stops one run; a run it
// stopped is never chosen again.
//
// TODO(sandbox): a single Go call (a `..` of two large strings, a pattern
// match) runs to its end before the run can stop; the guard bounds loops
// of them, not one.
type HeapGuard struct {
	budget   uint64
	interval time.Duration

	mu         sync.Mutex
	runs       map[*guardedRun]struct{}
	victim     *guardedRun   // stopped, not yet ended
	victimDone chan struct{} // closed when the victim ends
	wake       chan struct{} // a run started while none was in flight
	stop       chan struct{}
	closed     sync.Once
	stops      atomic.Uint64
}

// guardedRun is one run in flight under a guard.
type guardedRun struct {
	started time.Time
	cancel  context.CancelCauseFunc
	stopped bool // by the guard; guarded by HeapGuard.mu
}

// victimWait bounds how long the guard waits for a run it stopped to end.
const victimWait = time.Second

// NewHeapGuard returns a guard that stops the longest run in flight when
// the process's heap objects pass budget bytes, checking every 5 ms while
// runs are in flight. Close stops it.
func NewHeapGuard(budget uint64) *HeapGuard {
	g := &HeapGuard{budget: budget, interval: 5 * time.Millisecond,
		runs: map[*guardedRun]struct{}{}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	go g.loop()
	return g
}

// Stops returns how many runs the guard has stopped.
func (g *HeapGuard) Stops() uint64 { return g.stops.Load() }

// Close stops the guard; runs started after it are not watched.
func (g *HeapGuard) Close() { g.closed.Do(func() { close(g.stop) }) }

// watch registers a run under ctx, returning the context the run must use
// and the function that ends it.
func (g *HeapGuard) watch(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	r := &guardedRun{started: time.Now(), cancel: cancel}
	g.mu.Lock()
	g.runs[r] = struct{}{}
	first := len(g.runs) == 1
	g.mu.Unlock()
	if first {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
	return ctx, func() {
		g.mu.Lock()
		delete(g.runs, r)
		if g.victim == r {
			close(g.victimDone)
			g.victim = nil
		}
		g.mu.Unlock()
		cancel(nil)
	}
}

// loop checks the heap every interval while runs are in flight, and
// sleeps until one starts otherwise.
func (g *HeapGuard) loop() {
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		g.mu.Lock()
		idle := len(g.runs) == 0
		g.mu.Unlock()
		if idle {
			select {
			case <-g.stop:
				return
			case <-g.wake:
			}
			continue
		}
		g.check()
	}
}

// check stops the longest run in flight if the heap is over budget, then
// waits for it to end and collects garbage.
func (g *HeapGuard) check() {
	if readMetric(heapObjects) <= g.budget {
		return
	}
	// The heap's objects include garbage not yet collected: with a high
	// GOGC, a rule that only makes garbage passes the budget too. What the
	// collection finds live is what the runs hold (and what they
	// allocated while it marked, which it counts live: a margin of the
	// budget over the live heap of tens of MiB absorbs that).
	runtime.GC()
	if readMetric(heapLive) <= g.budget {
		return
	}
	g.mu.Lock()
	var oldest *guardedRun
	for r := range g.runs {
		if !r.stopped && (oldest == nil || r.started.Before(oldest.started)) {
			oldest = r
		}
	}
	if oldest == nil {
		g.mu.Unlock()
		return
	}
	oldest.stopped = true
	done := make(chan struct{})
	g.victim, g.victimDone = oldest, done
	g.mu.Unlock()

	oldest.cancel(ErrHeapBudget)
	g.stops.Add(1)
	// A run ends at its next instruction; one inside a long Go call (a
	// pattern match) ends later, and the guard judges again meanwhile,
	// never choosing a stopped run twice.
	select {
	case <-done:
	case <-time.After(victimWait):
	case <-g.stop:
		return
	}
	// What the run held is garbage now; until it is collected, the heap
	// still reads over budget and would cost an innocent run.
	runtime.GC()
}

// readMetric returns a runtime metric of the heap, in bytes.
func readMetric(name string) uint64 {
	sample := []rtmetrics.Sample{{Name: name}}
	rtmetrics.Read(sample)
	return sample[0].Value.Uint64()
}
