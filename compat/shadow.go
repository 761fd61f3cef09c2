package compat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
)

// Difference is one way a shadow run's outcome differs from the live one.
type Difference struct {
	// Field is what differs: "scopes", "claim" or "deny".
	Field string
	// Claim names the claim, when Field is "claim".
	Claim string
	// Action is the shadow action that last wrote the field, or "" when
	// none did (the live pipeline wrote it, the shadow set did not).
	Action string
	// Live and Shadow describe each side: the scopes, whether the claim is
	// set, the denial's code.
	Live, Shadow string
}

// ErrNotCompared is Shadow's answer when the live run failed other than by
// denying: there is no outcome to compare with.
var ErrNotCompared = errors.New("shadow: the live run failed; nothing to compare")

// HasShadow reports whether the pipeline has shadow actions to compare.
func (p *Pipeline) HasShadow() bool { return len(p.cfg.ShadowActions) > 0 }

// Shadow runs the shadow actions on tx, in place of the whole live
// pipeline (rules, hooks and actions) and from the same starting scopes,
// and compares the outcome with the live one: live and liveErr as Run
// returned them. It returns the differences, none when the outcomes
// match, or the error of a shadow run that failed other than by denying.
// A live run that failed other than by denying is not compared:
// ErrNotCompared. Shadow
// actions have a cache of their own: what they store never reaches the
// live actions.
//
// This is how a team proves a migrated action set (rulesgate migrate
// --format lua) before switching: on real traffic, without touching the
// answer.
func (p *Pipeline) Shadow(ctx context.Context, tx *Transaction, live *Result, liveErr error) ([]Difference, error) {
	var liveDenial *Denial
	if liveErr != nil && !errors.As(liveErr, &liveDenial) {
		return nil, ErrNotCompared
	}
	shadow, run, err := p.run(ctx, p.shadowEngine, tx, nil, nil, p.cfg.ShadowActions, p.shadowCache)
	var shadowDenial *Denial
	if err != nil && !errors.As(err, &shadowDenial) {
		return nil, err
	}

	if liveDenial != nil || shadowDenial != nil {
		return compareDenials(liveDenial, shadowDenial), nil
	}
	return compareResults(live, shadow, run), nil
}

// compareDenials compares two outcomes of which at least one is a denial.
// A rule's unauthorized and an action's invalid_request with the same
// message match: rulesgate migrate maps one to the other, as Actions have
// no unauthorized.
func compareDenials(live, shadow *Denial) []Difference {
	code := func(d *Denial) string {
		if d == nil {
			return "none"
		}
		return d.Code
	}
	same := live != nil && shadow != nil && live.Description == shadow.Description &&
		(live.Code == shadow.Code || (live.Code == "unauthorized" && shadow.Code == "invalid_request"))
	if same {
		return nil
	}
	action := ""
	if shadow != nil {
		action = shadow.Extension
	}
	d := Difference{Field: "deny", Action: action, Live: code(live), Shadow: code(shadow)}
	if live != nil && shadow != nil && live.Description != shadow.Description {
		// The messages are the extensions' own and may name a client or a
		// user: say that they differ, not what they say.
		d.Live, d.Shadow = d.Live+" (message differs)", d.Shadow+" (message differs)"
	}
	return []Difference{d}
}

// compareResults compares two issued tokens: scopes as sets, claims by
// their JSON values.
func compareResults(live, shadow *Result, run *actionRun) []Difference {
	var diffs []Difference
	if !sameSet(live.Scopes, shadow.Scopes) {
		diffs = append(diffs, Difference{Field: "scopes", Action: run.scopesBy,
			Live: joinScopes(live.Scopes), Shadow: joinScopes(shadow.Scopes)})
	}

	names := make([]string, 0, len(live.Claims)+len(shadow.Claims))
	for name := range live.Claims {
		names = append(names, name)
	}
	for name := range shadow.Claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		lv, inLive := live.Claims[name]
		sv, inShadow := shadow.Claims[name]
		if inLive && inShadow && sameJSON(lv, sv) {
			continue
		}
		diffs = append(diffs, Difference{Field: "claim", Claim: name, Action: run.claimBy[name],
			Live: claimState(inLive), Shadow: claimState(inShadow)})
	}
	return diffs
}

func claimState(set bool) string {
	if set {
		return "set"
	}
	return "absent"
}

// sameJSON compares two claim values as they would be written in a token.
// The values say nothing in the report: a claim may carry personal data.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	if string(ja) == string(jb) {
		return true
	}
	// The same values written differently (number forms, key order).
	var va, vb any
	if json.Unmarshal(ja, &va) != nil || json.Unmarshal(jb, &vb) != nil {
		return false
	}
	na, _ := json.Marshal(va)
	nb, _ := json.Marshal(vb)
	return string(na) == string(nb)
}

func sameSet(a, b []string) bool {
	return slices.Equal(sortedUnique(a), sortedUnique(b))
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func joinScopes(s []string) string {
	out, _ := json.Marshal(orEmpty(s))
	return string(out)
}
