package main

import (
	"fmt"
	"slices"
	"time"
)

// runSoak drives rulesgate on a real redis-server for d with conns
// connections: a rule set push every 5 s, and Redis killed and started
// again half-way. The gateway must fail no request.
func runSoak(conns int, d time.Duration) error {
	rig, err := startRedisRig()
	if err != nil {
		return err
	}
	defer rig.close()
	url, push := rig.url, func(i int) error { return rig.push(i, "soak") }
	result := make(chan stats, 1)
	go func() { result <- drive(url, conns, d) }()
	pushes, restarted := 0, false
	deadline := time.Now().Add(d)
	for tick := time.NewTicker(5 * time.Second); time.Now().Before(deadline); <-tick.C {
		if !restarted && time.Until(deadline) < d/2 {
			stop(rig.redis)
			time.Sleep(2 * time.Second) // Redis away for a while
			if err := rig.startRedis(); err != nil {
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
		float64(peakRSS(rig.gw.Process.Pid))/(1<<20))
	if s.errors > 0 {
		return fmt.Errorf("%d failed requests, first: %v", s.errors, s.firstErr)
	}
	return nil
}
