// Command load drives token requests at rulesgate and at a bare reverse
// proxy that only verifies and re-signs, both in front of the same fast
// local issuer, and reports throughput, latency, errors and the gateway's
// peak RSS. BENCHMARKS.md records its figures.
//
//	go run ./scripts/load [-conns 16] [-round 15s] [-rounds 2]   # from the repository root
//
// With -soak DUR it drives rulesgate on Redis for DUR with a push every
// 5 s and a Redis restart half-way, and reports errors (which must be
// none), p50/p99 and peak RSS.
//
// With -swap DUR it measures instead whether a rule set swap pauses token
// traffic: rulesgate on a real redis-server, p99 latency in rounds with a
// push of a new version every DUR against rounds without (target: within
// 2x).
//
// The issuer answers every request with one token minted at start, so that
// it costs next to nothing and the two proxies are what is measured. The
// gateway runs the example rules from the repository, as `rulesgate serve`
// in its own process; the bare proxy is this command run again with
// -bare-proxy, also in its own process, so that neither shares a heap with
// the load it serves.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		conns     = flag.Int("conns", 16, "concurrent keep-alive connections")
		round     = flag.Duration("round", 15*time.Second, "length of one measured round per target")
		rounds    = flag.Int("rounds", 2, "rounds per target, alternated")
		warmup    = flag.Duration("warmup", 3*time.Second, "unmeasured load before the first round")
		bareProxy = flag.Bool("bare-proxy", false, "internal: run as the bare verify-and-re-sign proxy")
		upstream  = flag.String("upstream", "", "internal: the issuer the bare proxy forwards to")
		listen    = flag.String("listen", "", "internal: the bare proxy's address")
		swap      = flag.Duration("swap", 0, "instead: rulesgate on Redis, p99 with a rule set push every DUR against p99 without")
		soak      = flag.Duration("soak", 0, "instead: rulesgate on Redis for DUR, a push every 5 s and Redis restarted half-way")
	)
	flag.Parse()
	log.SetFlags(0)

	if *bareProxy {
		if err := runBareProxy(*upstream, *listen); err != nil {
			log.Fatalf("bare proxy: %v", err)
		}
		return
	}
	if *soak > 0 {
		if err := runSoak(*conns, *soak); err != nil {
			log.Fatalf("load: %v", err)
		}
		return
	}
	if *swap > 0 {
		if err := runSwap(*conns, *round, *rounds, *warmup, *swap); err != nil {
			log.Fatalf("load: %v", err)
		}
		return
	}
	if err := run(*conns, *round, *rounds, *warmup); err != nil {
		log.Fatalf("load: %v", err)
	}
}

// run starts the issuer and both proxies, measures them in alternating
// rounds and prints the report. It fails when any request failed.
func run(conns int, round time.Duration, rounds int, warmup time.Duration) error {
	tmp, err := os.MkdirTemp("", "rulesgate-load-")
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
	gwAddr, bareAddr := freeAddr(), freeAddr()
	gwLog, err := os.Create(filepath.Join(tmp, "gateway.log"))
	if err != nil {
		return err
	}
	defer gwLog.Close()
	gw, err := start(gwLog, gwBin, "serve", "--upstream", iss.URL, "--listen", gwAddr,
		"--rules", "examples/rules", "--clients", "examples/clients.json",
		"--configuration", "examples/configuration.json")
	if err != nil {
		return err
	}
	defer stop(gw)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bare, err := start(os.Stderr, self, "-bare-proxy", "-upstream", iss.URL, "-listen", bareAddr)
	if err != nil {
		return err
	}
	defer stop(bare)

	targets := []*target{
		{name: "bare proxy (verify + re-sign)", url: "http://" + bareAddr + "/oauth/token", pid: bare.Process.Pid},
		{name: "rulesgate (verify + 3 rules + re-sign)", url: "http://" + gwAddr + "/oauth/token", pid: gw.Process.Pid,
			wantScope: "read:claims"},
	}
	for _, t := range targets {
		if err := waitReady(t.url); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		drive(t.url, conns, warmup) // warm both before measuring either
	}
	for range rounds {
		for _, t := range targets {
			cpu := cpuTime(t.pid)
			s := drive(t.url, conns, round)
			s.cpu = cpuTime(t.pid) - cpu
			t.add(s)
		}
	}

	report(targets, conns, round, rounds, peakRSS(gw.Process.Pid))
	for _, t := range targets {
		if t.total.errors > 0 {
			return fmt.Errorf("%s: %d failed requests, first: %v", t.name, t.total.errors, t.total.firstErr)
		}
	}
	return nil
}

// start runs a child process with its output to w.
func start(w *os.File, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	return cmd, nil
}

// stop ends a child process and waits for it.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("load: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady waits until a token endpoint answers 200.
func waitReady(url string) error {
	var last error
	for range 100 {
		res, err := http.Post(url, formType, strings.NewReader(tokenForm))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after 10s: %w", last)
}

// peakRSS reads a process's peak resident set (VmHWM) from /proc, in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return -1
}

// cpuTime reads the user and system time a process has used so far from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 10 ms on Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces: count from its end.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
