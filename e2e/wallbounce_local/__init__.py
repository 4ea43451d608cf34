"""The development stack (distribution ``wallbounce-devstack``): the parts of a whole system on one machine as
components (``components``: a real control plane of etcd + kube-apiserver built from Go modules, a real
Prometheus, Traefik, the provider simulators, the service processes, the operator, the traffic exporter, the
load), ``stack.Stack`` that starts them in order, ``driver.RolloutDriver`` that drives rollouts for every test,
benchmark and the demo, the pytest fixtures and the ``wallbounce-local`` CLI. Never shipped."""
