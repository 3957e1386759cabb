// Package rollout is SPEC §8: what each rule's result becomes. A rule takes an action
// (Enforce, Warn, Audit or Off), which an override may change for the namespaces it matches,
// and an unexpired exception lets an object skip the rules it names. The configuration lives
// in the providers file (providers.File); Compile checks it against the rules that exist and
// makes a Policy, which answers Decide for one rule and one object. The rules never see it:
// webhook.Hook.Run applies it to their results, and the audit to its findings.
package rollout

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Action is what a rule's result becomes.
type Action string

const (
	// Enforce: a denial denies, a patch is applied. Every rule's action unless configured.
	Enforce Action = "Enforce"
	// Warn: a denial is returned as an admission warning and the request is allowed
	// (validating rules only).
	Warn Action = "Warn"
	// Audit: a denial or patch is recorded (audit annotation, metric, log line, audit
	// finding) and the request is allowed unchanged.
	Audit Action = "Audit"
	// Off: the rule's results are dropped everywhere.
	Off Action = "Off"
)

// UnmarshalJSON reads an action. YAML 1.1, which Kubernetes' YAML reader follows, reads an
// unquoted Off as the boolean false, so false is Off: `action: Off` means what it says.
// Any other non-string is an error.
func (a *Action) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "false":
		*a = Off
		return nil
	case "true":
		return fmt.Errorf("action is the boolean true (YAML reads an unquoted On, Yes or True so): write Enforce, Warn, Audit or Off")
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("action %s is not one of Enforce, Warn, Audit or Off", data)
	}
	*a = Action(s)
	return nil
}

// Actions are the actions a validating rule can take; a mutating rule cannot Warn.
var Actions = []Action{Enforce, Warn, Audit, Off}

func (a Action) validFor(mutating bool) bool {
	return slices.Contains(Actions, a) && !(mutating && a == Warn)
}

func actionsFor(mutating bool) string {
	if mutating {
		return "Enforce, Audit or Off (a mutating rule cannot warn instead of patching)"
	}
	return "Enforce, Warn, Audit or Off"
}

// Default is the key of Config.Rules whose entry applies to every rule without its own.
const Default = "default"

// Config is the rollout part of the providers file.
type Config struct {
	// Rules maps a rule ID, or Default, to its action and overrides.
	Rules map[string]RuleConfig `json:"rules,omitempty"`
	// Exceptions let matching objects skip rules until they expire.
	Exceptions []Exception `json:"exceptions,omitempty"`
}

// RuleConfig is one rule's action and its overrides.
type RuleConfig struct {
	// Action is the rule's action; empty is the default entry's (Enforce without one).
	Action Action `json:"action,omitempty"`
	// Overrides change the action for the namespaces they match; the first match wins. A
	// rule with an entry of its own does not inherit the default entry's overrides.
	Overrides []Override `json:"overrides,omitempty"`
}

// Override is an action for some namespaces: those whose name matches one of Namespaces
// (globs) and whose labels match NamespaceSelector; an override gives at least one, and
// when it gives both, both must match.
type Override struct {
	Action            Action                `json:"action"`
	Namespaces        []string              `json:"namespaces,omitempty"`
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// Exception lets the objects it matches skip the rules it names until it expires. Every
// list it gives must match (an absent list matches anything); Users and Groups together
// match a request whose user is one of Users or in one of Groups, and never a stored object.
type Exception struct {
	Name string `json:"name"`
	// Rules are rule IDs or globs ("VM-*").
	Rules []string `json:"rules"`
	// Namespaces and Names are globs; Kinds are kinds ("VirtualMachine"); Users and Groups
	// are globs ("system:serviceaccount:legacy:*").
	Namespaces []string `json:"namespaces,omitempty"`
	Names      []string `json:"names,omitempty"`
	Kinds      []string `json:"kinds,omitempty"`
	Users      []string `json:"users,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	// Expires is an RFC 3339 time; from that second on the exception matches nothing.
	Expires string `json:"expires"`
	Reason  string `json:"reason"`
	Ticket  string `json:"ticket,omitempty"`
}

// Catalogue is what Compile checks a configuration against: every rule ID, with whether it
// is a mutating rule, and every kind the rules see.
type Catalogue struct {
	Mutating map[string]bool
	Kinds    []string
}

// Policy is a compiled Config. The nil Policy enforces every rule with no exception.
type Policy struct {
	rules      map[string]*rule
	exceptions []*exception
	trivial    bool // every rule Enforce, no override, no exception
	// Now is the clock exceptions expire by (time.Now unless a test sets it).
	Now func() time.Time
}

type rule struct {
	mutating  bool
	action    Action
	overrides []override
	// exceptions are those that name this rule, in the file's order.
	exceptions []*exception
	// inNamespace memoises, by namespace, the overrides and exceptions whose namespace
	// globs can match it (candidates): a decision then tries only those.
	mu          sync.RWMutex
	inNamespace map[string]*candidates
}

// candidates are a rule's overrides and exceptions that a namespace's name does not rule
// out, in the file's order.
type candidates struct {
	overrides  []*override
	exceptions []*exception
}

// maxNamespaces bounds a rule's memo of candidates; past it the memo starts again (namespaces
// come from admitted requests and stored objects, so this is only a guard).
const maxNamespaces = 10000

// candidatesIn returns the overrides and exceptions of r that can match namespace ns.
func (r *rule) candidatesIn(ns string) *candidates {
	r.mu.RLock()
	c, ok := r.inNamespace[ns]
	r.mu.RUnlock()
	if ok {
		return c
	}
	c = &candidates{}
	for i := range r.overrides {
		if o := &r.overrides[i]; len(o.namespaces) == 0 || o.namespaces.match(ns) {
			c.overrides = append(c.overrides, o)
		}
	}
	for _, e := range r.exceptions {
		if len(e.namespaces) == 0 || ns != "" && e.namespaces.match(ns) {
			c.exceptions = append(c.exceptions, e)
		}
	}
	r.mu.Lock()
	if r.inNamespace == nil || len(r.inNamespace) >= maxNamespaces {
		r.inNamespace = map[string]*candidates{}
	}
	r.inNamespace[ns] = c
	r.mu.Unlock()
	return c
}

type override struct {
	action     Action
	namespaces globs
	selector   labels.Selector // nil: any labels
}

type exception struct {
	Exception
	expires                                 time.Time
	rules, namespaces, names, users, groups globs
	kinds                                   map[string]bool
}

// Subject is the object a result is about.
type Subject struct {
	Kind, Namespace, Name string
	// User and Groups are the requester's; Stored marks an object already stored (the
	// audit), which has no requester.
	User   string
	Groups []string
	Stored bool
	// Namespaces looks up the namespace's labels (the watch cache); nil, or false from it
	// when the namespace is not known, and then no namespaceSelector matches.
	Namespaces Namespaces

	// the namespace's labels, looked up once (labelsOf)
	labels              map[string]string
	looked, labelsKnown bool
}

// Namespaces answers a namespace's labels (cluster.View does).
type Namespaces interface {
	NamespaceLabels(name string) (map[string]string, bool)
}

// labelsOf returns the subject's namespace's labels, looking them up once per subject.
func (s *Subject) labelsOf() (map[string]string, bool) {
	if !s.looked {
		s.looked = true
		if s.Namespaces != nil {
			s.labels, s.labelsKnown = s.Namespaces.NamespaceLabels(s.Namespace)
		}
	}
	return s.labels, s.labelsKnown
}

// Decision is the action a rule's result takes for a subject, and the exception that lets
// the subject skip it ("" for none; Action is then the action it would have had).
type Decision struct {
	Action    Action
	Exception string
}

// Skipped reports whether the result is dropped: the rule is Off, or excepted.
func (d Decision) Skipped() bool { return d.Action == Off || d.Exception != "" }

// Compile checks cfg against the catalogue and makes its Policy. Every error names the entry
// it is about.
func Compile(cfg Config, cat Catalogue) (*Policy, error) {
	p := &Policy{rules: make(map[string]*rule, len(cat.Mutating)), Now: time.Now}
	ids := slices.Sorted(maps.Keys(cat.Mutating))
	for _, id := range slices.Sorted(maps.Keys(cfg.Rules)) {
		if _, known := cat.Mutating[id]; !known && id != Default {
			return nil, fmt.Errorf("rules.%s: no such rule (the rules are %s, and %q)", id, strings.Join(ids, ", "), Default)
		}
	}
	def, defined := cfg.Rules[Default]
	defOverrides, err := compileOverrides(Default, def.Overrides)
	if err != nil {
		return nil, err
	}
	if def.Action != "" && !slices.Contains(Actions, def.Action) {
		return nil, fmt.Errorf("rules.%s: action %q is not one of %s", Default, def.Action, actionsFor(false))
	}
	var cannot []string // mutating rules the default entry's Warn would reach
	for _, id := range ids {
		mutating := cat.Mutating[id]
		rc, own := cfg.Rules[id]
		r := &rule{mutating: mutating, action: Enforce}
		if defined && def.Action != "" {
			r.action = def.Action
		}
		r.overrides = defOverrides
		if own {
			if rc.Action != "" {
				if !rc.Action.validFor(mutating) {
					return nil, fmt.Errorf("rules.%s: action %q is not one the rule can take: use %s", id, rc.Action, actionsFor(mutating))
				}
				r.action = rc.Action
			}
			if r.overrides, err = compileOverrides(id, rc.Overrides); err != nil {
				return nil, err
			}
			for i, o := range r.overrides {
				if !o.action.validFor(mutating) {
					return nil, fmt.Errorf("rules.%s.overrides[%d]: action %q is not one the rule can take: use %s", id, i, o.action, actionsFor(mutating))
				}
			}
		}
		inherited := !own || rc.Action == ""
		if mutating && (inherited && r.action == Warn || !own && slices.ContainsFunc(r.overrides, func(o override) bool { return o.action == Warn })) {
			cannot = append(cannot, id)
		}
		p.rules[id] = r
	}
	if len(cannot) > 0 {
		return nil, fmt.Errorf("rules.%s: action Warn cannot apply to the mutating rules %s: give each an entry with an action of its own (Enforce, Audit or Off), or use Audit", Default, strings.Join(cannot, ", "))
	}
	names := map[string]bool{}
	for i := range cfg.Exceptions {
		e, err := compileException(&cfg.Exceptions[i], ids, cat.Kinds)
		if err != nil {
			return nil, fmt.Errorf("exceptions[%d] (%q): %w", i, cfg.Exceptions[i].Name, err)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("exceptions[%d] (%q): the name is used twice: each exception needs its own", i, e.Name)
		}
		names[e.Name] = true
		p.exceptions = append(p.exceptions, e)
		for _, id := range ids {
			if e.rules.match(id) {
				p.rules[id].exceptions = append(p.rules[id].exceptions, e)
			}
		}
	}
	p.trivial = !slices.ContainsFunc(ids, func(id string) bool {
		r := p.rules[id]
		return r.action != Enforce || len(r.overrides) > 0 || len(r.exceptions) > 0
	})
	return p, nil
}

func compileOverrides(id string, in []Override) ([]override, error) {
	out := make([]override, 0, len(in))
	for i, o := range in {
		where := fmt.Sprintf("rules.%s.overrides[%d]", id, i)
		c := override{action: o.Action}
		switch {
		case o.Action == "":
			return nil, fmt.Errorf("%s: action is required (%s)", where, actionsFor(false))
		case !slices.Contains(Actions, o.Action):
			return nil, fmt.Errorf("%s: action %q is not one of %s", where, o.Action, actionsFor(false))
		case len(o.Namespaces) == 0 && o.NamespaceSelector == nil:
			return nil, fmt.Errorf("%s: give namespaces (globs), a namespaceSelector, or both: an override for every namespace is the rule's action", where)
		}
		var err error
		if c.namespaces, err = compileGlobs(o.Namespaces); err != nil {
			return nil, fmt.Errorf("%s: namespaces: %w", where, err)
		}
		if o.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(o.NamespaceSelector)
			if err != nil {
				return nil, fmt.Errorf("%s: namespaceSelector does not parse: %w", where, err)
			}
			c.selector = sel
		}
		out = append(out, c)
	}
	return out, nil
}

func compileException(in *Exception, ids, kinds []string) (*exception, error) {
	e := &exception{Exception: *in}
	switch {
	case in.Name == "":
		return nil, fmt.Errorf("name is required")
	case len(in.Rules) == 0:
		return nil, fmt.Errorf("rules is required: name the rule IDs (or globs such as \"VM-*\") the exception lets through")
	case in.Reason == "":
		return nil, fmt.Errorf("reason is required: say why the objects may break the rules")
	case in.Expires == "":
		return nil, fmt.Errorf("expires is required (RFC 3339, e.g. 2027-03-31T00:00:00Z): no exception lasts for ever")
	}
	t, err := time.Parse(time.RFC3339, in.Expires)
	if err != nil {
		return nil, fmt.Errorf("expires %q is not an RFC 3339 time (e.g. 2027-03-31T00:00:00Z)", in.Expires)
	}
	e.expires = t
	for _, list := range []struct {
		name string
		in   []string
		out  *globs
	}{{"rules", in.Rules, &e.rules}, {"namespaces", in.Namespaces, &e.namespaces}, {"names", in.Names, &e.names},
		{"users", in.Users, &e.users}, {"groups", in.Groups, &e.groups}} {
		if *list.out, err = compileGlobs(list.in); err != nil {
			return nil, fmt.Errorf("%s: %w", list.name, err)
		}
	}
	for _, g := range e.rules {
		if !slices.ContainsFunc(ids, func(id string) bool { return globs{g}.match(id) }) {
			return nil, fmt.Errorf("rules: %q names no rule (the rules are %s)", g.pattern, strings.Join(ids, ", "))
		}
	}
	if len(in.Kinds) > 0 {
		e.kinds = map[string]bool{}
		for _, k := range in.Kinds {
			if !slices.Contains(kinds, k) {
				return nil, fmt.Errorf("kinds: %q is not a kind the rules see (%s)", k, strings.Join(kinds, ", "))
			}
			e.kinds[k] = true
		}
	}
	return e, nil
}

// expired reports whether the exception no longer matches at now.
func (e *exception) expired(now time.Time) bool { return !now.Before(e.expires) }

func (e *exception) info() ExceptionInfo {
	return ExceptionInfo{Name: e.Name, Rules: e.Rules, Expires: e.expires, Reason: e.Reason, Ticket: e.Ticket}
}

// matches reports whether the exception matches s, whose namespace it can match
// (candidatesIn).
func (e *exception) matches(s *Subject) bool {
	switch {
	case len(e.names) > 0 && (s.Name == "" || !e.names.match(s.Name)):
		return false
	case e.kinds != nil && !e.kinds[s.Kind]:
		return false
	case len(e.users) > 0 || len(e.groups) > 0:
		return !s.Stored && (e.users.match(s.User) || slices.ContainsFunc(s.Groups, e.groups.match))
	}
	return true
}

// matches reports whether the override matches s, whose namespace's name it matches
// (candidatesIn).
func (o *override) matches(s *Subject) bool {
	if o.selector == nil {
		return true
	}
	l, ok := s.labelsOf()
	return ok && o.selector.Matches(labels.Set(l))
}

// Decide is the action of rule for s, and the unexpired exception that lets s skip it. A
// rule the policy does not know (DECODE, ROUTE) is enforced with no exception.
func (p *Policy) Decide(ruleID string, s *Subject) Decision {
	if p == nil {
		return Decision{Action: Enforce}
	}
	r, ok := p.rules[ruleID]
	if !ok {
		return Decision{Action: Enforce}
	}
	d := Decision{Action: r.action}
	if len(r.overrides) == 0 && len(r.exceptions) == 0 {
		return d
	}
	c := r.candidatesIn(s.Namespace)
	if s.Namespace != "" { // cluster-scoped objects take the rule's action
		for _, o := range c.overrides {
			if o.matches(s) {
				d.Action = o.action
				break
			}
		}
	}
	if d.Action == Off || len(c.exceptions) == 0 {
		return d
	}
	var now time.Time
	for _, e := range c.exceptions {
		if !e.matches(s) {
			continue
		}
		if now.IsZero() {
			now = p.Now()
		}
		if !e.expired(now) {
			d.Exception = e.Name
			break
		}
	}
	return d
}

// Trivial reports whether every rule is enforced everywhere with no exception: applying the
// policy changes nothing.
func (p *Policy) Trivial() bool { return p == nil || p.trivial }

// Mutating reports whether the rule is a mutating one.
func (p *Policy) Mutating(ruleID string) bool {
	return p != nil && p.rules[ruleID] != nil && p.rules[ruleID].mutating
}

// Action is rule's action where no override applies.
func (p *Policy) Action(ruleID string) Action {
	if p == nil || p.rules[ruleID] == nil {
		return Enforce
	}
	return p.rules[ruleID].action
}

// OverrideInfo describes one override of a rule, for `storage-webhook rules`.
type OverrideInfo struct {
	Action Action
	// Where is what it matches: "namespaces team-a-*", "namespaceSelector env=prod".
	Where string
}

// Overrides lists rule's overrides in the order they are tried.
func (p *Policy) Overrides(ruleID string) []OverrideInfo {
	if p == nil || p.rules[ruleID] == nil {
		return nil
	}
	var out []OverrideInfo
	for _, o := range p.rules[ruleID].overrides {
		var where []string
		if len(o.namespaces) > 0 {
			where = append(where, "namespaces "+strings.Join(o.namespaces.strings(), ","))
		}
		if o.selector != nil {
			where = append(where, "namespaceSelector "+o.selector.String())
		}
		out = append(out, OverrideInfo{Action: o.action, Where: strings.Join(where, " and ")})
	}
	return out
}

// ExceptionInfo is an exception with its expiry.
type ExceptionInfo struct {
	Name    string
	Rules   []string
	Expires time.Time
	Reason  string
	Ticket  string
}

// Expired reports whether the exception matches nothing at now.
func (e ExceptionInfo) Expired(now time.Time) bool { return !now.Before(e.Expires) }

// Exceptions lists every exception in the order of the file.
func (p *Policy) Exceptions() []ExceptionInfo {
	if p == nil {
		return nil
	}
	out := make([]ExceptionInfo, len(p.exceptions))
	for i, e := range p.exceptions {
		out[i] = e.info()
	}
	return out
}

// ExceptionsOf lists rule's exceptions (expired or not) in the order of the file, for
// `storage-webhook rules`.
func (p *Policy) ExceptionsOf(ruleID string) []ExceptionInfo {
	if p == nil || p.rules[ruleID] == nil {
		return nil
	}
	var out []ExceptionInfo
	for _, e := range p.rules[ruleID].exceptions {
		out = append(out, e.info())
	}
	return out
}
