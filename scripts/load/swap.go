package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
)

// runSwap measures token latency on a gateway that follows a rule set in
// Redis, in alternating rounds: quiet, and with a push every interval.
func runSwap(conns int, round time.Duration, rounds int, warmup, interval time.Duration) error {
	rig, err := startRedisRig()
	if err != nil {
		return err
	}
	defer rig.close()
	url, push := rig.url, func(i int) error { return rig.push(i, "swap") }
	drive(url, conns, warmup)

	var quiet, pushing stats
	var pushes atomic.Int64
	for range rounds {
		quiet = merge(quiet, drive(url, conns, round))

		done := make(chan struct{})
		pushErr := make(chan error, 1)
		go func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 1; ; i++ {
				select {
				case <-done:
					pushErr <- nil
					return
				case <-tick.C:
					if err := push(i); err != nil {
						pushErr <- err
						return
					}
					pushes.Add(1)
				}
			}
		}()
		pushing = merge(pushing, drive(url, conns, round))
		close(done)
		if err := <-pushErr; err != nil {
			return err
		}
	}

	slices.Sort(quiet.latencies)
	slices.Sort(pushing.latencies)
	q99, p99 := quantile(quiet.latencies, 0.99), quantile(pushing.latencies, 0.99)
	fmt.Printf("%d connections, %d rounds of %s each, a push every %s (%d pushes)\n\n", conns, rounds, round, interval, pushes.Load())
	fmt.Printf("without pushes: %d requests, %d errors, p50 %s, p99 %s\n", quiet.requests, quiet.errors, quantile(quiet.latencies, 0.5), q99)
	fmt.Printf("with pushes:    %d requests, %d errors, p50 %s, p99 %s\n", pushing.requests, pushing.errors, quantile(pushing.latencies, 0.5), p99)
	fmt.Printf("\np99 with pushes: %.2fx p99 without (target: at most 2x)\n", float64(p99)/float64(q99))
	if quiet.errors+pushing.errors > 0 {
		return fmt.Errorf("%d failed requests", quiet.errors+pushing.errors)
	}
	return nil
}

func merge(a, b stats) stats {
	a.requests += b.requests
	a.errors += b.errors
	if a.firstErr == nil {
		a.firstErr = b.firstErr
	}
	a.latencies = append(a.latencies, b.latencies...)
	a.elapsed += b.elapsed
	return a
}

// copyRules copies the .lua files of src into dst with a first line.
func copyRules(src, dst, first string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(src, "*.lua"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), append([]byte(first+"\n"), b...), 0o644); err != nil {
			return err
		}
	}
	return nil
}
