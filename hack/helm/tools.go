//go:build tools

// Keeps `go mod tidy` aware of the command scripts/helm-build compiles.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
