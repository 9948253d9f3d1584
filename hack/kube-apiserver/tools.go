//go:build tools

// Keeps `go mod tidy` aware of the command scripts/kube-build compiles.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
