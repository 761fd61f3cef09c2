// Command rulesgate is a token gateway in front of an OAuth 2.0 issuer that
// runs Auth0-style Lua rules on every token and re-signs it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rulesgate/rulesgate/gateway"
)

func main() {
	gateway.TuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
