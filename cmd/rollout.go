package cmd

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

// exportRollout makes the rollout's gauges read the configuration in force at each scrape:
// each rule's action, the exceptions by state and each one's expiry. An exception is
// counted expired from the second it expires, with no reload.
func exportRollout(m *metrics.Metrics, prov *providers.Store) {
	ids := slices.Sorted(maps.Keys(webhook.Catalogue().Mutating))
	m.RuleAction.Set(func() []metrics.Sample {
		p := prov.Policy()
		out := make([]metrics.Sample, len(ids))
		for i, id := range ids {
			out[i] = metrics.Sample{Labels: []string{id, string(p.Action(id))}, Value: 1}
		}
		return out
	})
	m.Exceptions.Set(func() []metrics.Sample {
		var active, expired float64
		now := time.Now()
		for _, e := range prov.Policy().Exceptions() {
			if e.Expired(now) {
				expired++
			} else {
				active++
			}
		}
		return []metrics.Sample{{Labels: []string{"active"}, Value: active}, {Labels: []string{"expired"}, Value: expired}}
	})
	m.ExceptionExpiry.Set(func() []metrics.Sample {
		var out []metrics.Sample
		for _, e := range prov.Policy().Exceptions() {
			out = append(out, metrics.Sample{Labels: []string{e.Name}, Value: float64(e.Expires.Unix())})
		}
		return out
	})
}

// logExpiries logs each exception of the rollout in force once when it expires (at once for
// one already expired when a file is loaded), until ctx ends. reloaded hears of each
// providers file put in force. Matching does not wait for this: an exception matches nothing
// from the second it expires (rollout.Policy.Decide reads the clock).
func logExpiries(ctx context.Context, prov *providers.Store, reloaded <-chan struct{}, log logrus.FieldLogger) {
	type seen struct {
		name    string
		expires time.Time
	}
	logged := map[seen]bool{}
	for {
		now := time.Now()
		var next time.Time
		for _, e := range prov.Policy().Exceptions() {
			k := seen{e.Name, e.Expires}
			switch {
			case e.Expired(now) && !logged[k]:
				logged[k] = true
				log.WithFields(logrus.Fields{"exception": e.Name, "rules": e.Rules, "expired": e.Expires.UTC().Format(time.RFC3339), "ticket": e.Ticket}).
					Warn("exception expired: it lets nothing through any more; remove it from the providers file, or renew it with a new expires")
			case !e.Expired(now) && (next.IsZero() || e.Expires.Before(next)):
				next = e.Expires
			}
		}
		var wake <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
		case <-reloaded:
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}
