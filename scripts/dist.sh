#!/usr/bin/env bash
# `make dist`: the plain-manifest installation, rendered from the Helm charts with their default values.
#   dist/install.yaml             the operator: its namespace, the CRD, RBAC, the Deployment (kubectl apply --server-side)
#   dist/wallbounce-service.yaml  the example service: both variants, the route, the WallBounceRollout
#   dist/kubectl-wallbounce.tar.gz  the kubectl plugin as Krew installs it (plugins/wallbounce.yaml)
# REGISTRY and TAG name the images (`make images` builds and pushes them); OPERATOR_NAMESPACE and SERVICE_NAMESPACE
# where the objects go. HELM: a helm binary (default: the one testbin/ builds).
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${REGISTRY:-ghcr.io/wallbounce-rollouts}
TAG=${TAG:-$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' charts/wallbounce-operator/Chart.yaml)}
OPERATOR_NAMESPACE=${OPERATOR_NAMESPACE:-wallbounce-system}
SERVICE_NAMESPACE=${SERVICE_NAMESPACE:-llm}
HELM=${HELM:-$(bash testbin/build.sh helm)/helm}
PYTHON=${PYTHON:-python3}
# helm built from its Go module has no default Kubernetes version of its own: render for the one we test against
KUBE_VERSION=${KUBE_VERSION:-1.36.0}
mkdir -p dist

namespace() {
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/part-of: wallbounce\n' "$1"
}

{
  echo "# wallbounce-operator $TAG: kubectl apply --server-side -f install.yaml"
  echo "# (rendered from charts/wallbounce-operator by make dist; images $REGISTRY/operator:$TAG)"
  echo "---"
  namespace "$OPERATOR_NAMESPACE"
  "$HELM" template wallbounce charts/wallbounce-operator --namespace "$OPERATOR_NAMESPACE" --include-crds \
    --kube-version "$KUBE_VERSION" --set image.repository="$REGISTRY/operator" --set image.tag="$TAG"
} > dist/install.yaml

{
  echo "# The example wall-bounce service $TAG: kubectl apply --server-side -f wallbounce-service.yaml"
  echo "# (rendered from charts/wallbounce-service by make dist; images $REGISTRY/service:$TAG)"
  echo "---"
  namespace "$SERVICE_NAMESPACE"
  "$HELM" template techsapo charts/wallbounce-service --namespace "$SERVICE_NAMESPACE" \
    --kube-version "$KUBE_VERSION" --set image.repository="$REGISTRY/service" --set image.tag="$TAG"
} > dist/wallbounce-service.yaml

"$PYTHON" -m wallbounce_kubectl.package dist
echo "dist/install.yaml dist/wallbounce-service.yaml dist/kubectl-wallbounce.tar.gz"
