//go:build tools

// Package tools pins Krew, the kubectl plugin manager, so that testbin/build.sh krew can build it: the kubectl
// plugin's Krew manifest (plugins/wallbounce.yaml) is installed with it in the tests.
package tools

import _ "sigs.k8s.io/krew/cmd/krew"
