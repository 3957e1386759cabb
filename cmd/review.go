package cmd

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/hcistorage/storage-webhook/webhook"
)

// Review answers one AdmissionReview exactly as the server would: the review goes through
// the same HTTP handler, and the response body is printed as it would be sent.
func Review(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("review", "review [--webhook mutating|validating] [--cluster PATH]... [--providers FILE] [--harvester-version V] FILE|-", stderr)
	var clusterPaths, privileged stringList
	var providersFile, pin, kind string
	fs.Var(&clusterPaths, "cluster", "file or folder of the objects that already exist (repeatable)")
	registerConfig(fs, &providersFile, &pin)
	fs.Var(&privileged, "privileged-user", "privileged request user (repeatable; default: the SPEC's list)")
	fs.StringVar(&kind, "webhook", "validating", "which webhook of the request's resource answers: mutating or validating")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("review takes one FILE (or - for standard input)")}
	}
	if kind != "mutating" && kind != "validating" {
		return usageError{fmt.Errorf("--webhook %q must be mutating or validating", kind)}
	}
	if err := validPin(pin); err != nil {
		return err
	}
	var body []byte
	var err error
	if fs.Arg(0) == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, webhook.DefaultMaxBodyBytes+1))
	} else {
		body, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		return usageError{err}
	}
	env, _, err := offlineEnv(clusterPaths, providersFile, pin, privileged, stderr)
	if err != nil {
		return err
	}
	review, err := webhook.DecodeReview(body)
	if err != nil {
		return usageError{err}
	}
	var hook *webhook.Hook
	for _, h := range webhook.Hooks(env) {
		if h.Route.Group == review.Request.Resource.Group && h.Route.Resource == review.Request.Resource.Resource && h.Mutating() == (kind == "mutating") {
			hook = h
		}
	}
	if hook == nil {
		return usageError{fmt.Errorf("no %s webhook serves %s", kind, review.Request.Resource.String())}
	}
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	h := &webhook.Handler{Hooks: []*webhook.Hook{hook}, Log: log}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, hook.ID(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.Mux().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
	}
	_, err = stdout.Write(append(rec.Body.Bytes(), '\n'))
	return err
}
