//go:build tools

// Package k8sbins pins the kube-apiserver, kubectl and etcd that the end-to-end tests run.
// build.sh builds them from the Go module proxy; etcd comes at the version Kubernetes pins.
package k8sbins

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
