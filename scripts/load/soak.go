package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// runSoak drives rulesgate on a real redis-server for d with conns
// connections: a rule set push every 5 s, and Redis killed and started
// again half-way. The gateway must fail no request.
func runSoak(conns int, d time.Duration) error {
	tmp, err := os.MkdirTemp("", "rulesgate-soak-")
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
	startRedis := func() (*exec.Cmd, error) {
		return start(os.Stderr, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning")
	}
	redis, err := startRedis()
	if err != nil {
		return err
	}
	defer func() { stop(redis) }()
	redisURL := "redis://" + redisAddr
	dirs := [2]string{filepath.Join(tmp, "a"), filepath.Join(tmp, "b")}
	for i, dir := range dirs {
		if err := copyRules("examples/rules", dir, "-- version "+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	push := func(i int) error {
		out, err := exec.Command(gwBin, "rules", "push", "--redis", redisURL, "--rules", dirs[i%2],
			"--clients", "examples/clients.json", "--configuration", "examples/configuration.json",
			"-m", "soak "+strconv.Itoa(i)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("push: %v: %s", err, out)
		}
		return nil
	}
	time.Sleep(200 * time.Millisecond)
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

	result := make(chan stats, 1)
	go func() { result <- drive(url, conns, d) }()
	pushes, restarted := 0, false
	deadline := time.Now().Add(d)
	for tick := time.NewTicker(5 * time.Second); time.Now().Before(deadline); <-tick.C {
		if !restarted && time.Until(deadline) < d/2 {
			stop(redis)
			time.Sleep(2 * time.Second) // Redis away for a while
			if redis, err = startRedis(); err != nil {
				return err
			}
			restarted = true
			time.Sleep(200 * time.Millisecond)
		}
		pushes++
		if err := push(pushes); err != nil {
			return err
		}
	}
	s := <-result
	slices.Sort(s.latencies)
	fmt.Printf("%d connections for %s, %d pushes, Redis restarted half-way\n", conns, d, pushes)
	fmt.Printf("requests %d (%.0f/s), errors %d, p50 %s, p99 %s, gateway peak RSS %.1f MB\n",
		s.requests, s.rate(), s.errors, quantile(s.latencies, 0.5), quantile(s.latencies, 0.99),
		float64(peakRSS(gw.Process.Pid))/(1<<20))
	if s.errors > 0 {
		return fmt.Errorf("%d failed requests, first: %v", s.errors, s.firstErr)
	}
	return nil
}
