package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rulesgate/rulesgate/compat/migrate"
)

const migrateUsage = `Usage of rulesgate migrate:
  rulesgate migrate --rules DIR --out DIR [--format auth0|lua|both]

Translates every Lua rule of --rules into a Credentials Exchange Action
and writes MIGRATION.md, the constructs to review and the order in which
to move the rules to Auth0.

`

// runMigrate runs `rulesgate migrate --rules DIR --out DIR [--format
// auth0|lua|both]`. It translates every .lua rule directly inside --rules,
// in file-name order (the order the rules run in), and writes to --out:
//
//   - auth0: the Auth0 Deploy CLI's directory layout, ready for
//     `a0deploy import`: actions/<name>.json, actions/<name>/code.js and
//     triggers/triggers.json binding the actions in the rules' order;
//   - lua: <name>.lua, a Lua credentials-exchange action for each rule,
//     straight in --out, so that --out can be given to
//     `rulesgate serve --actions`;
//   - both, the default: the auth0 layout, with the Lua actions in
//     --out/lua.
//
// Every format also writes --out/MIGRATION.md. <name> is the rule's file
// name without .lua. Files of those names are replaced; others are left
// alone. It prints one line for each rule on stdout.
//
// Unlike serve, migrate reads no environment variables: what it writes
// depends only on its command line.
func runMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	rulesDir := fs.String("rules", "", "directory of Lua rules to translate, in file-name order; required")
	outDir := fs.String("out", "", "directory to write the actions and MIGRATION.md to; required")
	format := fs.String("format", migrate.FormatBoth,
		"auth0 (Auth0 Deploy CLI layout), lua (actions for rulesgate serve --actions) or both (lua in --out/lua)")
	if err := parseMigrateFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *rulesDir == "":
		return usageErrorf("--rules is required")
	case *outDir == "":
		return usageErrorf("--out is required")
	case *format != migrate.FormatAuth0 && *format != migrate.FormatLua && *format != migrate.FormatBoth:
		return usageErrorf("--format must be auth0, lua or both, not %q", *format)
	}

	ts, err := migrate.TranslateFS(os.DirFS(*rulesDir), ".")
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return fmt.Errorf("migrate: no .lua rules in %s", *rulesDir)
	}
	if err := migrate.Write(*outDir, *format, ts); err != nil {
		return err
	}
	printMigration(stdout, *outDir, *format, ts)
	return nil
}

// parseMigrateFlags parses args into fs. It is parseFlags without the
// environment: RULESGATE_RULES and the like configure serve, and must not
// change what migrate writes.
func parseMigrateFlags(fs *flag.FlagSet, args []string, help io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(help, migrateUsage)
			fs.SetOutput(help)
			fs.PrintDefaults()
			return err
		}
		return usageErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// printMigration says, for each rule, whether it translated fully.
func printMigration(w io.Writer, outDir, format string, ts []*migrate.Translation) {
	for _, t := range ts {
		status := "translated fully"
		if n := issuesFor(t, format); n > 0 {
			status = fmt.Sprintf("%d constructs to review", n)
		}
		fmt.Fprintf(w, "%s: %s\n", t.File, status)
	}
	fmt.Fprintf(w, "wrote %d actions and %s\n", len(ts), outDir+string(os.PathSeparator)+"MIGRATION.md")
}

// issuesFor counts the issues of t in the formats written.
func issuesFor(t *migrate.Translation, format string) int {
	n := 0
	for _, is := range t.Issues {
		if format != migrate.FormatLua || !is.JSOnly {
			n++
		}
	}
	return n
}
