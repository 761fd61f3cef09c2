package rules

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// TestHeapGuard_StopsTheGrowingRun: a run that grows the heap past the
// budget is stopped with ErrHeapBudget long before its deadline, while
// short runs in flight beside it are served; below the budget, nothing is
// stopped.
func TestHeapGuard_StopsTheGrowingRun(t *testing.T) {
	g := NewHeapGuard(liveHeap() + 64<<20)
	defer g.Close()
	e := NewEngine(Options{HeapGuard: g})

	for _, attack := range []string{
		`local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 2^20) end`,
		`local t = {} for i = 1, 1e9 do t[#t + 1] = {} end`,
		`local t = {} for i = 1, 1e9 do t["k" .. i] = i end`,
		`local t = {} while true do t[#t + 1] = select(2, pcall(function() local u = {} for i = 1, 1e5 do u[i] = i end return u end)) end`,
	} {
		t.Run(attack, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var innocent error
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := evalOn(ctx, t, e, `local t = {} for i = 1, 100 do t[i] = i end return #t`); err != nil {
						innocent = err
						return
					}
				}
			})

			_, _, err := evalOn(ctx, t, e, attack)
			close(stop)
			wg.Wait()
			if !errors.Is(err, ErrHeapBudget) {
				t.Fatalf("got %v, want ErrHeapBudget", err)
			}
			if innocent != nil {
				t.Errorf("a short run beside the attack failed: %v", innocent)
			}
		})
	}

	if got := g.Stops(); got != 4 {
		t.Errorf("Stops: got %d, want 4, one per attack", got)
	}

	t.Run("below the budget", func(t *testing.T) {
		got := mustEval(t, e, `local t = {} for i = 1, 1e5 do t[i] = {i} end return #t`)
		if got != int64(1e5) {
			t.Fatalf("got %v, want 100000", got)
		}
	})

	t.Run("garbage only", func(t *testing.T) {
		// 2 GiB of strings, none kept, with the collector off: the heap's
		// objects pass the budget again and again, and the guard's own
		// collections free them. The margin is wider than the attacks':
		// what a run allocates while the collector marks counts as live.
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		g := NewHeapGuard(liveHeap() + 256<<20)
		defer g.Close()
		e := NewEngine(Options{HeapGuard: g})
		forced := readMetric(gcForced)
		got := mustEval(t, e, `local n = 0 for i = 1, 2048 do n = n + #string.rep("x", 2^20) end return n`)
		if got != int64(2<<30) {
			t.Fatalf("got %v, want 2 GiB", got)
		}
		// With the collector off, only the guard collects.
		if collected := readMetric(gcForced) - forced; g.Stops() != 0 || collected == 0 {
			t.Fatalf("got %d stops and %d collections, want none and some", g.Stops(), collected)
		}
	})
}

// gcForced is the runtime metric of the collections runtime.GC made.
const gcForced = "/gc/cycles/forced:gc-cycles"

// liveHeap returns the live heap after a collection: the base of a test's
// budget, whatever garbage earlier tests left.
func liveHeap() uint64 {
	runtime.GC()
	return readMetric(heapLive)
}

// TestHeapGuard_Deadline: a run the guard watches still ends by its
// deadline, reported as one.
func TestHeapGuard_Deadline(t *testing.T) {
	g := NewHeapGuard(1 << 40)
	defer g.Close()
	e := NewEngine(Options{HeapGuard: g})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := evalOn(ctx, t, e, `while true do end`); !IsTimeout(err) || errors.Is(err, ErrHeapBudget) {
		t.Fatalf("got %v, want the deadline", err)
	}
}

// BenchmarkHeapGuard_Run measures what the guard adds to a short run: a
// cancelable context and a registration (compare the two sub-benchmarks).
func BenchmarkHeapGuard_Run(b *testing.B) {
	p, err := Compile("b.lua", []byte(`return 1`))
	if err != nil {
		b.Fatal(err)
	}
	g := NewHeapGuard(1 << 40)
	defer g.Close()
	for _, bm := range []struct {
		name  string
		guard *HeapGuard
	}{{"without", nil}, {"with", g}} {
		b.Run(bm.name, func(b *testing.B) {
			e := NewEngine(Options{HeapGuard: bm.guard})
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if err := e.Run(ctx, func(s *State) error {
					_, err := s.Load(p, s.NewEnv())
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHeapGuard_VictimStuckInGo: the oldest run, stuck in a Go call that
// no instruction check reaches, is stopped first; the guard does not wait
// for it forever, nor choose it again, and stops the run growing the heap.
func TestHeapGuard_VictimStuckInGo(t *testing.T) {
	g := NewHeapGuard(liveHeap() + 64<<20)
	defer g.Close()
	release, entered := make(chan struct{}), make(chan struct{})
	e := NewEngine(Options{HeapGuard: g, Setup: func(s *State) {
		s.SetGlobal("block", s.Lua().NewFunction(func(l *lua.LState) int {
			close(entered)
			<-release
			return 0
		}))
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	stuck := make(chan error, 1)
	go func() {
		_, _, err := evalOn(ctx, t, e, `block() return 1`)
		stuck <- err
	}()
	<-entered
	_, _, err := evalOn(ctx, t, e, `local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 2^20) end`)
	if !errors.Is(err, ErrHeapBudget) {
		t.Fatalf("the growing run: got %v, want ErrHeapBudget", err)
	}
	select {
	case err := <-stuck:
		t.Fatalf("the stuck run ended before its Go call returned: %v", err)
	default:
	}
	close(release)
	if err := <-stuck; !errors.Is(err, ErrHeapBudget) {
		t.Errorf("the stuck run, stopped first: got %v, want ErrHeapBudget once back in Lua", err)
	}
}
