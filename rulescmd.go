package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/gateway"
	"github.com/rulesgate/rulesgate/rules"
)

const rulesUsage = `Usage:
  rulesgate rules push --redis URL --rules DIR [--hooks DIR] [--actions DIR]
                       [--shadow-actions DIR] [--configuration FILE] [--clients FILE]
                       -m NOTE [--activate=false]
  rulesgate rules list --redis URL
  rulesgate rules show --redis URL VERSION
  rulesgate rules diff --redis URL A B
  rulesgate rules activate --redis URL VERSION   (rollback: activate an older version)
  rulesgate rules test --rules DIR [--hooks DIR] [--actions DIR] [--configuration FILE]
                       [--clients FILE] --case FILE

Each flag also reads RULESGATE_ and its name: --redis is RULESGATE_REDIS.
`

// rulesCallTimeout bounds every call of a rules subcommand to Redis.
const rulesCallTimeout = 10 * time.Second

// runRules runs `rulesgate rules SUBCOMMAND`: managing the rule set
// versions in Redis that every replica serves, and trying a rule set.
func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return usageErrorf("a subcommand is required")
	}
	ctx, cancel := context.WithTimeout(ctx, rulesCallTimeout)
	defer cancel()
	switch args[0] {
	case "push":
		return rulesPush(ctx, args[1:], stdout, stderr)
	case "list":
		return rulesList(ctx, args[1:], stdout, stderr)
	case "show":
		return rulesShow(ctx, args[1:], stdout, stderr)
	case "diff":
		return rulesDiff(ctx, args[1:], stdout, stderr)
	case "activate":
		return rulesActivate(ctx, args[1:], stdout, stderr)
	case "test":
		return rulesTest(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, rulesUsage)
		return nil
	}
	return usageErrorf("unknown subcommand %q\n\n%s", args[0], rulesUsage)
}

// storeFlags parses a subcommand's flags, with --redis, and opens the
// store; it returns the positional arguments, exactly want of them.
func storeFlags(fs *flag.FlagSet, args []string, stderr io.Writer, want int) (rules.Store, func(), []string, error) {
	redisURL := fs.String("redis", "", "Redis URL of the rule store; required")
	pos, err := parseFlagsArgs(fs, args, stderr, want)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(pos) != want {
		return nil, nil, nil, usageErrorf("%d arguments needed, %d given", want, len(pos))
	}
	if *redisURL == "" {
		return nil, nil, nil, usageErrorf("--redis (or RULESGATE_REDIS) is required")
	}
	st, client, err := openStore(*redisURL)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, func() { client.Close() }, pos, nil
}

// setFlags declares the flags naming a rule set's parts on disk.
func setFlags(fs *flag.FlagSet) *compat.Dirs {
	var d compat.Dirs
	fs.StringVar(&d.Rules, "rules", "", "directory of Lua rules")
	fs.StringVar(&d.Hooks, "hooks", "", "directory of Lua hooks")
	fs.StringVar(&d.Actions, "actions", "", "directory of Lua actions")
	fs.StringVar(&d.ShadowActions, "shadow-actions", "", "directory of Lua shadow actions")
	fs.StringVar(&d.Configuration, "configuration", "", "JSON file of settings")
	fs.StringVar(&d.Clients, "clients", "", "JSON file of clients")
	return &d
}

// checkedSet reads a rule set from disk and validates it as a push does:
// every file compiles and has its kind's shape, every document decodes.
func checkedSet(ctx context.Context, d compat.Dirs) (*rules.Set, compat.Config, error) {
	set, err := compat.ReadSet(d)
	if err != nil {
		return nil, compat.Config{}, err
	}
	if err := validateSet(ctx, set); err != nil {
		return nil, compat.Config{}, err
	}
	cfg, err := compat.ConfigOf(set, new(rules.Cache), compat.Config{})
	return set, cfg, err
}

func rulesPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules push", flag.ContinueOnError)
	d := setFlags(fs)
	note := fs.String("m", "", "why this version; required")
	activate := fs.Bool("activate", true, "make the new version active at once")
	st, closeStore, _, err := storeFlags(fs, args, stderr, 0)
	if err != nil {
		return err
	}
	defer closeStore()
	if *note == "" {
		return usageErrorf("-m NOTE is required: say why this version")
	}
	if d.Rules == "" && d.Hooks == "" && d.Actions == "" {
		return usageErrorf("--rules, --hooks or --actions is required")
	}

	set, _, err := checkedSet(ctx, *d)
	if err != nil {
		return fmt.Errorf("refused, nothing pushed: %w", err)
	}
	set.Note, set.Author = *note, author()
	v, err := st.Push(ctx, set, *activate)
	if err != nil {
		return err
	}
	state := "not active; activate it with: rulesgate rules activate " + strconv.FormatInt(v, 10)
	if *activate {
		state = "active"
	}
	fmt.Fprintf(stdout, "pushed version %d (%s)\n", v, state)
	return nil
}

// author names who pushed, from the environment.
func author() string {
	for _, k := range []string{"RULESGATE_AUTHOR", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

func rulesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	st, closeStore, _, err := storeFlags(flag.NewFlagSet("rules list", flag.ContinueOnError), args, stderr, 0)
	if err != nil {
		return err
	}
	defer closeStore()
	list, err := st.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tACTIVE\tCREATED\tAUTHOR\tFILES\tNOTE")
	for _, s := range list {
		active := ""
		if s.Active {
			active = "*"
		}
		files := 0
		for _, h := range s.Hashes {
			files += len(h)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\n", s.Version, active, s.Created.Format(time.RFC3339), s.Author, files, s.Note)
	}
	return w.Flush()
}

// versionArg reads a version number argument.
func versionArg(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return 0, usageErrorf("%q is not a version number", s)
	}
	return v, nil
}

func rulesShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules show", flag.ContinueOnError)
	revealValues := fs.Bool("reveal", false, "print the configuration's values, which actions see as secrets")
	st, closeStore, pos, err := storeFlags(fs, args, stderr, 1)
	if err != nil {
		return err
	}
	defer closeStore()
	v, err := versionArg(pos[0])
	if err != nil {
		return err
	}
	set, err := st.Get(ctx, v)
	if err != nil {
		return err
	}
	if !*revealValues {
		set = compat.Redacted(set)
	}
	fmt.Fprintf(stdout, "version %d, %s by %s: %s\n", set.Version, set.Created.Format(time.RFC3339), set.Author, set.Note)
	for _, group := range sortedKeys(set.Files) {
		for _, f := range set.Files[group] {
			fmt.Fprintf(stdout, "\n== %s/%s  sha256:%s\n%s", group, f.Name, f.Hash, f.Source)
			if !strings.HasSuffix(f.Source, "\n") {
				fmt.Fprintln(stdout)
			}
		}
	}
	for _, name := range sortedKeys(set.Documents) {
		fmt.Fprintf(stdout, "\n== %s\n%s\n", name, set.Documents[name])
	}
	return nil
}

func rulesDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules diff", flag.ContinueOnError)
	revealValues := fs.Bool("reveal", false, "diff the configuration's values, which actions see as secrets")
	st, closeStore, pos, err := storeFlags(fs, args, stderr, 2)
	if err != nil {
		return err
	}
	defer closeStore()
	var sets [2]*rules.Set
	for i, arg := range pos {
		v, err := versionArg(arg)
		if err != nil {
			return err
		}
		if sets[i], err = st.Get(ctx, v); err != nil {
			return err
		}
		if !*revealValues {
			sets[i] = compat.Redacted(sets[i])
		}
	}
	fmt.Fprint(stdout, rules.Diff(sets[0], sets[1]))
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func rulesActivate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	st, closeStore, pos, err := storeFlags(flag.NewFlagSet("rules activate", flag.ContinueOnError), args, stderr, 1)
	if err != nil {
		return err
	}
	defer closeStore()
	v, err := versionArg(pos[0])
	if err != nil {
		return err
	}
	if err := st.Activate(ctx, v); err != nil {
		if errors.Is(err, rules.ErrNoVersion) {
			return fmt.Errorf("version %d is not in the store: %w", v, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "version %d is active\n", v)
	return nil
}

// jsonOut writes v as indented JSON.
func jsonOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func rulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	d := setFlags(fs)
	caseFile := fs.String("case", "", `JSON file: {"request": {token request parameters}, "upstream_claims": {...}}; required`)
	issuer := fs.String("issuer", "https://rulesgate.invalid/", "iss of the resulting token")
	narrow := fs.Bool("narrow-scopes", true, "start the scope at requested ∩ granted when the request names scopes")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *caseFile == "" {
		return usageErrorf("--case FILE is required")
	}
	var trial gateway.Trial
	if err := readJSONFile(*caseFile, &trial); err != nil {
		return fmt.Errorf("read --case: %w", err)
	}
	_, cfg, err := checkedSet(ctx, *d)
	if err != nil {
		return err
	}
	cfg.NarrowScopes = *narrow
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	res := gateway.Try(ctx, compat.NewPipeline(cfg), *issuer, 0, trial)
	if err := jsonOut(stdout, res); err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("the client would get %d %s", res.Status, res.Error)
	}
	return nil
}
