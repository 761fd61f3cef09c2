package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `rulesgate: a token gateway that runs Auth0-style Lua rules

Usage:
  rulesgate serve --upstream URL [flags]   run the gateway
  rulesgate demo [--listen ADDR]           run the gateway in front of a built-in
                                           Auth0-like issuer with the example rules

Run "rulesgate serve -h" for the flags. Every serve flag also reads an
environment variable: --upstream is RULESGATE_UPSTREAM, and so on.
`

// errUsage marks a mistake in the command line: exit code 2.
var errUsage = errors.New("usage")

// usageErrorf returns an error that exits with code 2.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// run runs one subcommand and returns the process exit code: 0 on success,
// 2 for a bad command line, 1 for anything else.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = runMigrate(args[1:], stdout, stderr)
	case "rules":
		err = runRules(ctx, args[1:], stdout, stderr)
	case "keys":
		err = runKeys(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "rulesgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}

	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "rulesgate %s: %s\n", args[0], strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	}
	fmt.Fprintf(stderr, "rulesgate %s: %v\n", args[0], err)
	return 1
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from its environment variable (RULESGATE_ and the flag name
// in upper case with - as _). The command line wins over the environment.
// Asked for help, it writes the flags to help.
func parseFlags(fs *flag.FlagSet, args []string, help io.Writer) error {
	_, err := parseFlagsArgs(fs, args, help, 0)
	return err
}

// parseFlagsArgs is parseFlags for a command that also takes up to
// maxArgs arguments, before, between or after its flags.
func parseFlagsArgs(fs *flag.FlagSet, args []string, help io.Writer, maxArgs int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(help, "Usage of rulesgate %s:\n", fs.Name())
				printDefaults(help, fs)
				return nil, err
			}
			return nil, usageErrorf("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > maxArgs {
		return nil, usageErrorf("unexpected argument %q", positional[maxArgs])
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if given[f.Name] || !ok || err != nil {
			return
		}
		if setErr := fs.Set(f.Name, v); setErr != nil {
			err = usageErrorf("%s: %v", name, setErr)
		}
	})
	return positional, err
}

func envName(flagName string) string {
	return "RULESGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// printDefaults writes the flags of fs with their environment variables.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%s (%s)\n    \t%s", f.Name, envName(f.Name), f.Usage)
		if f.DefValue != "" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
