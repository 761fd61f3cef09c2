package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	lua "github.com/yuin/gopher-lua"
)

// Options configure an Engine. The zero value is a working engine with the
// default limits and no shape-specific globals.
type Options struct {
	// Limits bound each state; zero fields take their defaults.
	Limits Limits
	// Setup runs once on every new state, after the sandbox is built, to
	// install shape-specific globals with State.SetGlobal. Nil installs none.
	Setup func(*State)
	// Logger receives what extensions print, at debug level. Nil means
	// slog.Default().
	Logger *slog.Logger
	// HeapGuard, if not nil, watches every run of the engine and stops the
	// longest when the process's heap passes its budget. Engines may share
	// one: the heap is the process's.
	HeapGuard *HeapGuard
}

// Engine runs compiled programs on pooled, sandboxed Lua states. It is safe
// for concurrent use: each Run holds one state for its duration.
type Engine struct {
	opts Options
	// idle holds states between runs. A sync.Pool would drop them at every
	// garbage collection, and a state costs far more to build than to run.
	idle chan *State
}

// NewEngine returns an engine with the given options.
func NewEngine(opts Options) *Engine {
	opts.Limits = opts.Limits.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Limits.IdleStates == 0 {
		opts.Limits.IdleStates = 8 * runtime.GOMAXPROCS(0)
	}
	return &Engine{opts: opts, idle: make(chan *State, opts.Limits.IdleStates)}
}

// Run takes a state from the pool, binds it to ctx so that the deadline
// (or the heap guard) interrupts any Lua code, and calls fn with it. A state on which fn failed
// is closed rather than returned to the pool: a Lua error or a deadline can
// leave it half-way through a run.
func (e *Engine) Run(ctx context.Context, fn func(*State) error) error {
	if g := e.opts.HeapGuard; g != nil {
		var end func()
		ctx, end = g.watch(ctx)
		defer end()
	}

	var s *State
	select {
	case s = <-e.idle:
	default:
		s = newState(e.opts)
	}

	if done := ctx.Done(); done != nil {
		s.l.SetContext(doneContext{ctx, done})
	}
	err := runRecovering(s, fn)
	s.l.RemoveContext()
	if err != nil {
		s.l.Close()
		return err
	}

	s.l.SetTop(0)
	select {
	case e.idle <- s:
	default:
		s.l.Close() // enough states are idle already
	}
	return nil
}

// runRecovering calls fn with s, turning a Go panic into an error: one
// tenant's program must not take down the process, whatever it makes a
// library call or the code around it do.
func runRecovering(s *State, fn func(*State) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Program: s.running, Value: lua.LNil, Err: fmt.Errorf("%w: %v", ErrPanic, r)}
		}
	}()
	return fn(s)
}

// ErrPanic is the cause of a run that ended in a Go panic.
var ErrPanic = errors.New("panic")

// doneContext is ctx with its Done channel read once. gopher-lua asks for
// Done before every instruction, and a cancelable context finds its
// channel through a lock-free but not free lookup each time.
type doneContext struct {
	context.Context
	done <-chan struct{}
}

func (c doneContext) Done() <-chan struct{} { return c.done }
