package migrate

import (
	"fmt"
	"strings"
)

// differences are the ways Credentials Exchange Actions behave unlike
// Rules, which no translation can hide. Auth0's guide "Migrate from Rules
// to Actions" lists most of them.
var differences = []string{
	"**No `unauthorized` error.** Actions deny with `invalid_scope`, `invalid_request` or " +
		"`server_error`. `UnauthorizedError(msg)` becomes `api.access.deny('invalid_request', msg)`: " +
		"clients get 400 `invalid_request` where they got 403 `unauthorized`. Update clients that " +
		"look for `unauthorized`.",
	"**`api.access.deny` does not stop the action.** The translations return right after it; code " +
		"you add after a denial still runs.",
	"**No `global`.** Actions have no table shared by rules. The translations keep a module-level " +
		"`ruleGlobal` object, which lives as long as the container, as `global` did; use `api.cache` " +
		"(at most 20 entries, 15 minutes by default) for what must be shared.",
	"**Secrets are strings.** `configuration.X` becomes `event.secrets.X`. Each action lists the " +
		"secrets it reads in `actions/<name>.json` with an empty value: set the values in the " +
		"dashboard or in the Deploy CLI's keyword replacement. A setting that held a number, a " +
		"boolean or an object arrives as a string.",
	"**Scopes.** `event.transaction.target_scopes` starts as everything granted; after the last " +
		"action the scopes are cut to the grant and any other scope is dropped silently, as " +
		"rulesgate does. Actions change scopes only through `api.transaction`.",
	"**Claims.** `context.accessToken[name] = value` becomes `api.accessToken.setCustomClaim`. " +
		"Restricted claims and the `auth0.com`, `webtask.io`, `webtask.run` and `urn:auth0` " +
		"namespaces are refused as in Rules. An action cannot read the claims earlier actions set.",
	"**No user, no ID token, no management API.** Client credentials have no user; " +
		"`context.idToken`, `context.connection` and the `auth0` object have no equivalent.",
	"**`event.request.query`.** Auth0 documents no `query` on the credentials-exchange event; " +
		"the JavaScript actions read it with `?.`, so a missing query reads as no parameter.",
	"**A rule that never called back failed the request; an action that returns goes on.** " +
		"Such paths are listed above.",
	"**Lua strings are bytes, JavaScript strings UTF-16.** `#s`, `string.sub` and the character " +
		"classes of patterns agree on ASCII text only.",
}

// Report returns MIGRATION.md for the translations of a rule set, given
// in the order the rules run, as written in format.
func Report(format string, ts []*Translation) []byte {
	var b strings.Builder
	js := format != FormatLua
	lua := format != FormatAuth0

	b.WriteString("# Moving the rules to Credentials Exchange Actions\n\n")
	fmt.Fprintf(&b, "`rulesgate migrate` translated %s. %s\n\n", plural(len(ts), "rule"), summary(ts, js, lua))
	writeRuleTable(&b, ts, js, lua)
	if js {
		writeOrder(&b, ts)
		writeSecrets(&b, ts)
	}
	writeIssues(&b, ts, js)
	b.WriteString("## Where Actions differ from Rules\n\n")
	for _, d := range differences {
		b.WriteString("- " + d + "\n")
	}
	return []byte(b.String())
}

// plural returns "1 rule" or "n rules".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// summary says how many rules translated fully.
func summary(ts []*Translation, js, lua bool) string {
	full := 0
	for _, t := range ts {
		if (!js || t.Complete(FormatAuth0)) && (!lua || t.Complete(FormatLua)) {
			full++
		}
	}
	if full == len(ts) {
		return "Every rule translated fully."
	}
	return fmt.Sprintf("%d translated fully; review the constructs listed below, each marked "+
		"`TODO(migrate)` in the generated code, before you deploy the others.", full)
}

func writeRuleTable(b *strings.Builder, ts []*Translation, js, lua bool) {
	b.WriteString("## Rules\n\n| rule |")
	sep := "|---|"
	if js {
		b.WriteString(" Auth0 action (JavaScript) |")
		sep += "---|"
	}
	if lua {
		b.WriteString(" rulesgate action (Lua) |")
		sep += "---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, t := range ts {
		fmt.Fprintf(b, "| `%s` |", t.File)
		if js {
			b.WriteString(" " + status(t, FormatAuth0) + " |")
		}
		if lua {
			b.WriteString(" " + status(t, FormatLua) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// status says whether t translated fully to format.
func status(t *Translation, format string) string {
	n := 0
	for _, is := range t.Issues {
		if format == FormatAuth0 || !is.JSOnly {
			n++
		}
	}
	if n == 0 {
		return "translated fully"
	}
	return plural(n, "construct") + " to review"
}

func writeOrder(b *strings.Builder, ts []*Translation) {
	b.WriteString("## Order of the move\n\n")
	b.WriteString("Active rules run before deployed actions, so Auth0 advises moving the last rule " +
		"first: deploy its action and bind it to the `credentials-exchange` trigger, check the " +
		"tokens, disable the rule, then go on with the rule before it. Each action then runs after " +
		"the rules that ran before it, as its rule did.\n\n")
	for i := len(ts) - 1; i >= 0; i-- {
		fmt.Fprintf(b, "%d. `%s`: action `%s`\n", len(ts)-i, ts[i].File, ts[i].Name)
	}
	b.WriteString("\n`triggers/triggers.json` binds every action in the rules' order, the order " +
		"they run in once every rule is moved. The Deploy CLI deploys every action of the " +
		"directory (`deployed: true`) and applies the bindings at once: to move one rule at a " +
		"time, keep in `triggers/triggers.json` only the actions moved so far.\n\n")
}

func writeSecrets(b *strings.Builder, ts []*Translation) {
	var lines []string
	for _, t := range ts {
		if len(t.Secrets) > 0 {
			lines = append(lines, fmt.Sprintf("- `%s`: `%s`", t.Name, strings.Join(t.Secrets, "`, `")))
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("## Secrets\n\nThe configuration values each action reads, as secrets to set:\n\n")
	b.WriteString(strings.Join(lines, "\n") + "\n\n")
}

func writeIssues(b *strings.Builder, ts []*Translation, js bool) {
	b.WriteString("## Constructs to review\n\n")
	found := false
	for _, t := range ts {
		var rows []string
		for _, is := range t.Issues {
			if is.JSOnly && !js {
				continue
			}
			affects := "JavaScript and Lua"
			if is.JSOnly {
				affects = "JavaScript"
			}
			rows = append(rows, fmt.Sprintf("| %d | %s | %s | %s |", is.Line, codeSpan(is.Construct),
				affects, cell(is.Reason)))
		}
		if len(rows) == 0 {
			continue
		}
		found = true
		fmt.Fprintf(b, "### `%s`\n\n| line | construct | affects | why |\n|---|---|---|---|\n", t.File)
		b.WriteString(strings.Join(rows, "\n") + "\n\n")
	}
	if !found {
		b.WriteString("None: every construct has a faithful translation.\n\n")
	}
}

// codeSpan writes s as inline code in a table cell.
func codeSpan(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + cell(s) + " ``"
	}
	return "`" + cell(s) + "`"
}

// cell escapes s for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
