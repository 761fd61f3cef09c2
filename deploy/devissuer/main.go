// Command devissuer serves the development issuer of `rulesgate demo` on
// its own, so that a gateway in another container can stand in front of
// it (docker-compose.yml at the repository root). It behaves as Auth0 does
// for machine-to-machine tokens: every granted scope goes in the token,
// whatever the request asks for. It signs with a new key at each start
// and is not for production.
//
// Usage:
//
//	devissuer [--listen :9000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/rulesgate/rulesgate/gateway"
	"github.com/rulesgate/rulesgate/gateway/devissuer"
)

// audience is the API the demo clients may ask tokens for, as in
// `rulesgate demo`.
const audience = "https://api.example.com"

// clients are the clients of `rulesgate demo`; examples/clients.json
// gives the gateway their names and metadata.
var clients = map[string]devissuer.Client{
	"demo-m2m": {Secret: "demo-secret", Grants: map[string][]string{
		audience: {"read:claims", "write:claims", "delete:claims", "admin:everything"},
	}},
	"suspended-m2m": {Secret: "suspended-secret", Grants: map[string][]string{
		audience: {"read:claims"},
	}},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "devissuer: %v\n", err)
		os.Exit(1)
	}
}

// run serves the issuer until ctx is done.
func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devissuer", flag.ContinueOnError)
	listen := fs.String("listen", ":9000", "address the issuer listens on")
	if err := fs.Parse(args); err != nil {
		return err
	}

	is, err := devissuer.New(clients)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	slog.Info("development issuer listening; not for production", "addr", ln.Addr().String())
	return gateway.Serve(ctx, ln, is.Handler())
}
