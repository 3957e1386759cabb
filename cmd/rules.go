package cmd

import (
	"fmt"
	"io"
	"time"

	"github.com/hcistorage/storage-webhook/webhook"
)

// Rules prints the rule reference; with --providers, each rule's action in force under that
// file's rollout instead (its action, overrides and exceptions).
func Rules(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules", "rules [--providers FILE]", stderr)
	var providersFile string
	fs.StringVar(&providersFile, "providers", "", "providers file whose rollout to show (the action of each rule, its overrides and exceptions)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	file, err := readProviders(providersFile)
	if err != nil {
		return err
	}
	if file == nil {
		fmt.Fprint(stdout, webhook.RulesTable())
		return nil
	}
	fmt.Fprint(stdout, webhook.RolloutTable(file.Policy(), time.Now()))
	return nil
}
