#!/usr/bin/env bash
# The end-to-end scenarios on a kind cluster (for machines with Docker): the same test code as the local stack,
# selected by WALLBOUNCE_E2E_KUBECONFIG. Needs docker, kind, kubectl, helm, go (Gateway API CRDs come from the
# Go module cache, as in the local stack) and the project's venv (`make venv`).
#   e2e/kind/run.sh            create the cluster (if missing), install everything, run the scenarios
#   KEEP=1 e2e/kind/run.sh     keep the cluster afterwards (default: deleted at the end)
set -euo pipefail
cd "$(dirname "$0")/../.."
CLUSTER=${CLUSTER:-wallbounce-e2e}
PY=${PY:-.venv/bin/python}
KUBECONFIG_FILE=${KUBECONFIG_FILE:-${TMPDIR:-/tmp}/wallbounce-kind/kubeconfig}
mkdir -p "$(dirname "$KUBECONFIG_FILE")"
export KUBECONFIG=$KUBECONFIG_FILE

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config e2e/kind/cluster.yaml --kubeconfig "$KUBECONFIG_FILE"
fi
[ "${KEEP:-0}" = 1 ] || trap 'kind delete cluster --name "$CLUSTER"' EXIT

echo "== images"
docker build -q --target operator -t wallbounce-operator:e2e .
docker build -q --target service -t wallbounce-service:e2e .
docker build -q -f e2e/kind/Dockerfile.sim --build-arg SERVICE_IMAGE=wallbounce-service:e2e -t wallbounce-sim:e2e .
kind load docker-image --name "$CLUSTER" wallbounce-operator:e2e wallbounce-service:e2e wallbounce-sim:e2e

echo "== Gateway API CRDs (v1.4.1, from the Go module cache) and Traefik"
"$PY" - <<'PY'
from kubernetes import config
from wallbounce_local import thirdparty
thirdparty.install(config.new_client_from_config(), ["gateway-api"])
PY
kubectl create namespace llm --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f e2e/kind/traefik.yaml

echo "== the charts (the operator; the service's two variants and route), Prometheus and the simulators"
kubectl -n llm create secret generic techsapo-providers --from-literal=OPENAI_API_KEY=sk-test-kind \
  --from-literal=ANTHROPIC_API_KEY=sk-ant-test-kind --from-literal=GEMINI_API_KEY=gemini-test-kind \
  --dry-run=client -o yaml | kubectl apply -f -
# one replica: the scenarios kill and restart "the" operator
helm upgrade --install wallbounce-operator charts/wallbounce-operator -n llm --wait --timeout 5m \
  --set image.repository=wallbounce-operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set replicas=1 --set rbac.scope=namespace --set-json 'watchNamespaces=["llm"]' \
  --set prometheus.address=http://prometheus.monitoring:9090
# each variant's SDKs point at its own simulators
helm upgrade --install techsapo charts/wallbounce-service -n llm --wait --timeout 5m \
  --set image.repository=wallbounce-service --set image.tag=e2e --set image.pullPolicy=Never \
  --set stable.replicas=1 --set config.cache.enabled=false --set rollout.create=false \
  $(for v in stable canary; do printf -- "--set-json %s.extraEnv=%s " "$v" \
      "[{\"name\":\"OPENAI_BASE_URL\",\"value\":\"http://sims-$v:8000/v1\"},{\"name\":\"ANTHROPIC_BASE_URL\",\"value\":\"http://sims-$v:8000\"},{\"name\":\"GOOGLE_GEMINI_BASE_URL\",\"value\":\"http://sims-$v:8000\"}]"; done) \
  --set-json "apiKeys=$(LOCAL_KEY="$(sed -n 's/^LOCAL_API_KEY = "\(.*\)"$/\1/p' e2e/wallbounce_local/loadgen.py)" python3 -c 'import hashlib, json, os; print(json.dumps({"tenants": {"default": {"requests_per_s": 10000, "burst": 10000, "tokens_per_min": 10**10, "usd_per_day": 10**6, "max_concurrent": 10000}}, "keys": [{"id": "local-loadgen", "tenant": "default", "sha256": hashlib.sha256(os.environ["LOCAL_KEY"].encode()).hexdigest()}]}))')"
kubectl apply -f e2e/kind/support.yaml
for d in llm/techsapo-stable llm/techsapo-canary llm/sims-stable llm/sims-canary monitoring/prometheus traefik/traefik; do
  kubectl -n "${d%%/*}" rollout status "deployment/${d##*/}" --timeout=5m
done

echo "== the end-to-end scenarios"
WALLBOUNCE_E2E_KUBECONFIG=$KUBECONFIG_FILE WALLBOUNCE_E2E_NAMESPACE=llm WALLBOUNCE_E2E_OPERATOR_NAMESPACE=llm \
  "$PY" -m pytest e2e/tests -v "$@"
