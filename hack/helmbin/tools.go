//go:build tools

// Package helmbin pins the helm binary that the chart tests run. Harvester and Rancher
// install charts through Rancher's helm-controller, which is built on Helm 3, so the pin
// stays on Helm 3 (helm.sh/helm/v3). build.sh builds it from the Go module proxy.
package helmbin

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
