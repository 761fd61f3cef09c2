package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// runSwap measures token latency on a gateway that follows a rule set in
// Redis, in alternating rounds: quiet, and with a push every interval.
func runSwap(conns int, round time.Duration, rounds int, warmup, interval time.Duration) error {
	tmp, err := os.MkdirTemp("", "rulesgate-swap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	iss, err := startIssuer()
	if err != nil {
		return fmt.Errorf("start issuer: %w", err)
	}
	defer iss.Close()
	gwBin := filepath.Join(tmp, "rulesgate")
	if out, err := exec.Command("go", "build", "-o", gwBin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("build rulesgate: %v\n%s", err, out)
	}
	redisAddr := freeAddr()
	_, port, _ := net.SplitHostPort(redisAddr)
	redis, err := start(os.Stderr, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err != nil {
		return err
	}
	defer stop(redis)
	redisURL := "redis://" + redisAddr

	// Two versions of the example rules, told apart by a comment, so that
	// every push is a new version with a file to compile.
	dirs := [2]string{filepath.Join(tmp, "a"), filepath.Join(tmp, "b")}
	for i, dir := range dirs {
		if err := copyRules("examples/rules", dir, "-- version "+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	push := func(i int) error {
		out, err := exec.Command(gwBin, "rules", "push", "--redis", redisURL, "--rules", dirs[i%2],
			"--clients", "examples/clients.json", "--configuration", "examples/configuration.json",
			"-m", "swap "+strconv.Itoa(i)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("push: %v: %s", err, out)
		}
		return nil
	}
	time.Sleep(200 * time.Millisecond) // redis-server up
	if err := push(0); err != nil {
		return err
	}

	gwAddr := freeAddr()
	gwLog, err := os.Create(filepath.Join(tmp, "gateway.log"))
	if err != nil {
		return err
	}
	defer gwLog.Close()
	gw, err := start(gwLog, gwBin, "serve", "--upstream", iss.URL, "--listen", gwAddr, "--redis", redisURL)
	if err != nil {
		return err
	}
	defer stop(gw)
	url := "http://" + gwAddr + "/oauth/token"
	if err := waitReady(url); err != nil {
		return err
	}
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
