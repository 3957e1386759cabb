package dashboardtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The parts of Grafana's dashboard JSON model (the classic one, which Grafana's file
// provisioning and Rancher Monitoring's sidecar load) that the checks read.
type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	SchemaVersion int      `json:"schemaVersion"`
	Tags          []string `json:"tags"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or an object with the string in "query"
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Datasource *datasourceRef  `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	GridPos     *gridPos       `json:"gridPos"`
	Datasource  *datasourceRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a row's panels: this dashboard has no rows
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type target struct {
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Datasource   *datasourceRef `json:"datasource"`
}

// gridWidth is the width of Grafana's grid.
const gridWidth = 24

// builtins are Grafana's own variables a Prometheus query may hold, with a value that
// parses where Grafana puts its value ($__rate_interval and $__range inside [...], the
// _s and _ms forms as numbers).
var builtins = map[string]string{
	"__interval":         "30s",
	"__interval_ms":      "30000",
	"__rate_interval":    "2m",
	"__rate_interval_ms": "120000",
	"__range":            "1d",
	"__range_s":          "86400",
	"__range_ms":         "86400000",
}

// variableRef is a reference to a dashboard variable in each of Grafana's syntaxes: $name,
// ${name} or ${name:format}, and the deprecated [[name]].
var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// legendRef is a label a legend format names, as {{label}}.
var legendRef = regexp.MustCompile(`\{\{\s*([^}\s]*)\s*\}\}`)

// labelValues is the form of a Prometheus query variable that lists a label's values.
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// checker holds what a dashboard's queries may read and collects the problems found.
type checker struct {
	series   map[string]labelSet // metric name: the labels its series have in Prometheus
	renamed  map[string]labelSet // metric name: its own labels the scrape renamed exported_<label>
	values   map[string]string   // variable name: a value to parse with
	problems []string
	where    string // the panel and target being checked
	dsUID    string // "${datasource}": how panels and targets name the datasource variable
}

func (c *checker) report(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.where != "" {
		msg = c.where + ": " + msg
	}
	c.problems = append(c.problems, msg)
}

// checkDashboard returns every problem of the dashboard JSON data, checked against the
// series a Prometheus that scrapes the service holds (scrapedSeries).
func checkDashboard(data []byte, series, renamed map[string]labelSet) []string {
	c := &checker{series: series, renamed: renamed, values: maps.Clone(builtins)}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		c.report("does not decode: %v", err)
		return c.problems
	}
	if strings.TrimSpace(d.Title) == "" {
		c.report("no title")
	}
	// Grafana's uids are at most 40 characters of letters, digits, - and _.
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`).MatchString(d.UID) {
		c.report("uid %q is not 1 to 40 letters, digits, - or _", d.UID)
	}
	if d.SchemaVersion < 36 { // 36: datasources referenced by {type, uid}, as here
		c.report("schemaVersion %d, want a current one (36 or later)", d.SchemaVersion)
	}
	if len(d.Tags) == 0 {
		c.report("no tags")
	}
	c.checkVariables(d.Templating.List)
	if len(d.Panels) == 0 {
		c.report("no panels")
	}
	ids := map[int]string{}
	var placed []panel
	for _, p := range d.Panels {
		c.where = fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			c.report("id %d, want a positive one", p.ID)
		} else if other, ok := ids[p.ID]; ok {
			c.report("id %d is also panel %q's", p.ID, other)
		}
		ids[p.ID] = p.Title
		c.checkPanel(p)
		if p.GridPos != nil {
			for _, q := range placed {
				if overlap(*p.GridPos, *q.GridPos) {
					c.report("gridPos %+v overlaps panel %d %q's %+v", *p.GridPos, q.ID, q.Title, *q.GridPos)
				}
			}
			placed = append(placed, p)
		}
	}
	return c.problems
}

// checkVariables checks the templating list: a Prometheus datasource variable that
// panels name, and query variables whose queries read what the service exports. It also
// gives every variable a value to parse queries with.
func (c *checker) checkVariables(vars []variable) {
	c.where = "templating"
	for _, v := range vars {
		switch v.Type {
		case "datasource":
			c.values[v.Name] = "prometheus"
			var q string
			if json.Unmarshal(v.Query, &q) == nil && q == "prometheus" && c.dsUID == "" {
				c.dsUID = "${" + v.Name + "}"
			}
		default:
			// A multi-value variable becomes a regex (a|b) in Prometheus queries, "All" its
			// allValue: either parses inside =~"...".
			c.values[v.Name] = ".*"
			if v.IncludeAll && v.AllValue != "" {
				c.values[v.Name] = v.AllValue
			}
		}
	}
	if c.dsUID == "" {
		c.report("no datasource variable of type prometheus")
	}
	for _, v := range vars {
		if v.Type != "query" {
			continue
		}
		c.where = fmt.Sprintf("variable %q", v.Name)
		c.checkDatasource(v.Datasource)
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct{ Query string }
			_ = json.Unmarshal(v.Query, &obj)
			q = obj.Query
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			c.report("query %q: only label_values(<selector>, <label>) is checked; extend the test for another form", q)
			continue
		}
		if out, ok := c.parse(m[1]); ok && out != nil && !out[m[2]] {
			c.report("label_values: %s has no label %q%s", m[1], m[2], c.hint(out, m[2]))
		}
	}
}

func (c *checker) checkDatasource(ref *datasourceRef) {
	if c.dsUID == "" {
		return // reported once already
	}
	if ref == nil || ref.Type != "prometheus" || ref.UID != c.dsUID {
		c.report("datasource %+v, want {type: prometheus, uid: %s}", ref, c.dsUID)
	}
}

func (c *checker) checkPanel(p panel) {
	if p.Type == "" {
		c.report("no type")
	}
	if p.Type == "row" || len(p.Panels) > 0 {
		c.report("a row: the checks read top-level panels only; extend the test before adding rows")
	}
	if strings.TrimSpace(p.Title) == "" {
		c.report("no title")
	}
	if strings.TrimSpace(p.Description) == "" {
		c.report("no description")
	}
	if p.FieldConfig.Defaults.Unit == "" {
		c.report("no unit (fieldConfig.defaults.unit)")
	}
	if g := p.GridPos; g == nil {
		c.report("no gridPos")
	} else if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > gridWidth {
		c.report("gridPos %+v is not inside the %d-column grid", *g, gridWidth)
	}
	c.checkDatasource(p.Datasource)
	if len(p.Targets) == 0 {
		c.report("no targets")
	}
	refIDs := map[string]bool{}
	panelWhere := c.where
	for i, t := range p.Targets {
		c.where = fmt.Sprintf("%s target %d (refId %q)", panelWhere, i, t.RefID)
		if t.RefID == "" {
			c.report("no refId")
		} else if refIDs[t.RefID] {
			c.report("refId %q twice", t.RefID)
		}
		refIDs[t.RefID] = true
		if t.Datasource != nil {
			c.checkDatasource(t.Datasource)
		}
		if strings.TrimSpace(t.Expr) == "" {
			c.report("no expr")
			continue
		}
		out, ok := c.parse(t.Expr)
		if !ok || out == nil {
			continue
		}
		for _, m := range legendRef.FindAllStringSubmatch(t.LegendFormat, -1) {
			if !out[m[1]] {
				c.report("legend %q names %q, which the result has not (it has %s)%s", t.LegendFormat, m[1], out, c.hint(out, m[1]))
			}
		}
	}
	c.where = panelWhere
}

// parse replaces the variables of expr, parses it with Prometheus's parser, checks every
// selector (parser.Inspect) and every label the expression groups or matches by, and
// returns the labels of its result (nil when a metric is unknown, already reported).
func (c *checker) parse(expr string) (labelSet, bool) {
	unknown := false
	replaced := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		v, ok := c.values[name]
		if !ok {
			c.report("unknown variable %s in %q", ref, expr)
			unknown = true
		}
		return v
	})
	if unknown {
		return nil, false
	}
	e, err := parser.ParseExpr(replaced)
	if err != nil {
		c.report("does not parse: %v\n%s", err, replaced)
		return nil, false
	}
	selectors := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			selectors++
			c.checkSelector(vs)
		}
		return nil
	})
	if selectors == 0 {
		c.report("%q reads no metric", expr)
	}
	return c.labelsOf(e), true
}

// checkSelector: the selected metric is exported, and each label it matches on is one of
// the metric's.
func (c *checker) checkSelector(vs *parser.VectorSelector) {
	name := selectorName(vs)
	if name == "" {
		c.report("%s selects no metric by name", vs)
		return
	}
	have, ok := c.series[name]
	if !ok {
		c.report("unknown metric %s: metrics.New() exports no such series", name)
		return
	}
	for _, m := range vs.LabelMatchers {
		if m.Name != labels.MetricName && !have[m.Name] {
			c.report("%s matches on label %q, which %s has not (it has %s)%s", vs, m.Name, name, have, c.hint(have, m.Name))
		}
	}
}

func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// hint explains a missing label the scrape renamed: with honor_labels false (the
// ServiceMonitor's default) the metric's own namespace label is exported_namespace, and
// namespace is the webhook pod's.
func (c *checker) hint(have labelSet, label string) string {
	if have["exported_"+label] {
		return fmt.Sprintf(" (the scrape renamed the service's own %s to exported_%s; the target's %s is the webhook pod's)", label, label, label)
	}
	return ""
}

// labelsOf returns the labels the series of e's result may have, reporting each grouping
// (by, without), matching (on, ignoring) and group_left/group_right label that the series
// it applies to cannot have. nil: unknown (a metric not exported, already reported).
func (c *checker) labelsOf(e parser.Expr) labelSet {
	switch e := e.(type) {
	case *parser.VectorSelector:
		if have, ok := c.series[selectorName(e)]; ok {
			return maps.Clone(have)
		}
		return nil
	case *parser.MatrixSelector:
		return c.labelsOf(e.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labelsOf(e.Expr)
	case *parser.ParenExpr:
		return c.labelsOf(e.Expr)
	case *parser.UnaryExpr:
		return c.labelsOf(e.Expr)
	case *parser.StepInvariantExpr:
		return c.labelsOf(e.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return labelSet{}
	case *parser.Call:
		return c.callLabels(e)
	case *parser.AggregateExpr:
		in := c.labelsOf(e.Expr)
		if in == nil {
			return nil
		}
		for _, l := range e.Grouping {
			if !in[l] {
				c.report("%s %s (%s): the series it aggregates have no label %q (they have %s)%s",
					e.Op, map[bool]string{true: "without", false: "by"}[e.Without], strings.Join(e.Grouping, ", "), l, in, c.hint(in, l))
			}
		}
		var out labelSet
		switch {
		case e.Op == parser.TOPK || e.Op == parser.BOTTOMK || e.Op == parser.LIMITK || e.Op == parser.LIMIT_RATIO:
			out = in // they keep whole series
		case e.Without:
			out = maps.Clone(in)
			for _, l := range e.Grouping {
				delete(out, l)
			}
		default:
			out = setOf(e.Grouping...)
		}
		if e.Op == parser.COUNT_VALUES {
			if s, ok := e.Param.(*parser.StringLiteral); ok {
				out[s.Val] = true
			}
		}
		return out
	case *parser.BinaryExpr:
		return c.binaryLabels(e)
	}
	c.report("an expression of type %T: extend labelsOf", e)
	return nil
}

func (c *checker) callLabels(e *parser.Call) labelSet {
	var args []labelSet
	for _, a := range e.Args {
		args = append(args, c.labelsOf(a))
	}
	str := func(i int) string {
		if i < len(e.Args) {
			if s, ok := e.Args[i].(*parser.StringLiteral); ok {
				return s.Val
			}
		}
		return ""
	}
	switch e.Func.Name {
	case "time", "vector", "scalar", "pi":
		return labelSet{}
	case "absent", "absent_over_time":
		return nil // the labels of the selector's equality matchers: nothing groups by them here
	case "histogram_quantile", "histogram_fraction":
		in := args[len(args)-1]
		if in == nil {
			return nil
		}
		if !in["le"] {
			c.report("%s over series without le (a classic histogram's _bucket series have it)", e.Func.Name)
		}
		out := maps.Clone(in)
		delete(out, "le")
		return out
	case "label_replace", "label_join":
		in := args[0]
		if in == nil {
			return nil
		}
		srcs := []string{str(3)}
		if e.Func.Name == "label_join" {
			srcs = nil
			for i := 3; i < len(e.Args); i++ {
				srcs = append(srcs, str(i))
			}
		}
		for _, l := range srcs {
			if l != "" && !in[l] {
				c.report("%s reads label %q, which its series have not (they have %s)%s", e.Func.Name, l, in, c.hint(in, l))
			}
		}
		out := maps.Clone(in)
		out[str(1)] = true
		return out
	}
	// The rest keep the labels of their vector or range-vector argument.
	out := labelSet{}
	for i, a := range e.Args {
		if t := a.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeMatrix {
			continue
		}
		if args[i] == nil {
			return nil
		}
		maps.Copy(out, args[i])
	}
	return out
}

// binaryLabels follows Prometheus's vector matching: on() labels must be on both sides,
// group_left's extra labels on the right (the "one" side), group_right's on the left.
func (c *checker) binaryLabels(e *parser.BinaryExpr) labelSet {
	l, r := c.labelsOf(e.LHS), c.labelsOf(e.RHS)
	lv := e.LHS.Type() == parser.ValueTypeVector
	rv := e.RHS.Type() == parser.ValueTypeVector
	switch {
	case !lv && !rv:
		return labelSet{}
	case !rv:
		return l
	case !lv:
		return r
	}
	if l == nil || r == nil {
		return nil
	}
	vm := e.VectorMatching
	if vm == nil {
		vm = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	for _, name := range vm.MatchingLabels {
		switch {
		case vm.On && (!l[name] || !r[name]):
			c.report("%s on (%s): label %q is not on both sides (left %s, right %s)", e.Op, strings.Join(vm.MatchingLabels, ", "), name, l, r)
		case !vm.On && !l[name] && !r[name]:
			c.report("%s ignoring (%s): neither side has label %q (left %s, right %s)", e.Op, strings.Join(vm.MatchingLabels, ", "), name, l, r)
		}
	}
	switch {
	case e.Op.IsSetOperator():
		if e.Op == parser.LOR {
			out := maps.Clone(l)
			maps.Copy(out, r)
			return out
		}
		return l
	case vm.Card == parser.CardManyToOne:
		out := maps.Clone(l)
		for _, name := range vm.Include {
			if !r[name] {
				c.report("group_left (%s): the right side has no label %q (it has %s)", strings.Join(vm.Include, ", "), name, r)
			}
			out[name] = true
		}
		return out
	case vm.Card == parser.CardOneToMany:
		out := maps.Clone(r)
		for _, name := range vm.Include {
			if !l[name] {
				c.report("group_right (%s): the left side has no label %q (it has %s)", strings.Join(vm.Include, ", "), name, l)
			}
			out[name] = true
		}
		return out
	case vm.On:
		return setOf(vm.MatchingLabels...)
	default:
		out := maps.Clone(l)
		for _, name := range vm.MatchingLabels {
			delete(out, name)
		}
		return out
	}
}

func overlap(a, b gridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

// labelSet is a set of label names.
type labelSet map[string]bool

func setOf(names ...string) labelSet {
	s := labelSet{}
	for _, n := range names {
		s[n] = true
	}
	return s
}

func (s labelSet) String() string {
	names := slices.Collect(maps.Keys(s))
	sort.Strings(names)
	return "[" + strings.Join(names, " ") + "]"
}
