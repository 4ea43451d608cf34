"""Local-stack tooling: a real Kubernetes control plane (etcd + kube-apiserver built from Go
modules), a real Prometheus, and the process helpers both use. Shared by the tests, the demo and
the ``wallbounce-local`` CLI."""
