package main

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// redisRig is rulesgate serving from a real redis-server, in front of the
// fast issuer, with two versions of the example rules to push in turn:
// what -swap and -soak measure.
type redisRig struct {
	tmp, gwBin, port, redisURL string
	url                        string // the gateway's token endpoint
	dirs                       [2]string
	iss                        *httptest.Server
	redis, gw                  *exec.Cmd
	gwLog                      *os.File
}

// startRedisRig builds rulesgate, starts the issuer, a redis-server with
// version 0 of the rules pushed, and the gateway on it, ready.
func startRedisRig() (*redisRig, error) {
	r := &redisRig{}
	var err error
	if r.tmp, err = os.MkdirTemp("", "rulesgate-redis-"); err != nil {
		return nil, err
	}
	if r.iss, err = startIssuer(); err != nil {
		r.close()
		return nil, fmt.Errorf("start issuer: %w", err)
	}
	r.gwBin = filepath.Join(r.tmp, "rulesgate")
	if out, err := exec.Command("go", "build", "-o", r.gwBin, ".").CombinedOutput(); err != nil {
		r.close()
		return nil, fmt.Errorf("build rulesgate: %v\n%s", err, out)
	}
	redisAddr := freeAddr()
	_, r.port, _ = net.SplitHostPort(redisAddr)
	r.redisURL = "redis://" + redisAddr
	if err := r.startRedis(); err != nil {
		r.close()
		return nil, err
	}
	// Two versions of the example rules, told apart by a comment, so that
	// every push is a new version with a file to compile.
	for i := range r.dirs {
		r.dirs[i] = filepath.Join(r.tmp, strconv.Itoa(i))
		if err := copyRules("examples/rules", r.dirs[i], "-- version "+strconv.Itoa(i)); err != nil {
			r.close()
			return nil, err
		}
	}
	time.Sleep(200 * time.Millisecond) // redis-server up
	if err := r.push(0, "first"); err != nil {
		r.close()
		return nil, err
	}

	gwAddr := freeAddr()
	if r.gwLog, err = os.Create(filepath.Join(r.tmp, "gateway.log")); err != nil {
		r.close()
		return nil, err
	}
	if r.gw, err = start(r.gwLog, r.gwBin, "serve", "--upstream", r.iss.URL, "--listen", gwAddr, "--redis", r.redisURL); err != nil {
		r.close()
		return nil, err
	}
	r.url = "http://" + gwAddr + "/oauth/token"
	if err := waitReady(r.url); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// startRedis starts redis-server on the rig's port, empty.
func (r *redisRig) startRedis() error {
	var err error
	r.redis, err = start(os.Stderr, "redis-server", "--port", r.port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	return err
}

// push pushes version i of the rules, alternating the two contents.
func (r *redisRig) push(i int, note string) error {
	out, err := exec.Command(r.gwBin, "rules", "push", "--redis", r.redisURL, "--rules", r.dirs[i%2],
		"--clients", "examples/clients.json", "--configuration", "examples/configuration.json",
		"-m", note+" "+strconv.Itoa(i)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("push: %v: %s", err, out)
	}
	return nil
}

// close stops what the rig started and removes its files.
func (r *redisRig) close() {
	for _, cmd := range []*exec.Cmd{r.gw, r.redis} {
		if cmd != nil {
			stop(cmd)
		}
	}
	if r.gwLog != nil {
		r.gwLog.Close()
	}
	if r.iss != nil {
		r.iss.Close()
	}
	os.RemoveAll(r.tmp)
}
