"""The rollout's lifecycle against the real API server and the real Prometheus: a route write refused by RBAC, the
guard in every state that carries traffic, a canary that cannot serve, the end of a rollout (abort after
Completed, convergence, promoteStable), pauses that stick, ladder edits, kstatus conditions read by ``kubectl
wait``, and the operator's analysis sources (allowlist, a slow tenant's own queries)."""

from __future__ import annotations

import http.server
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from kubernetes import client

from wallbounce_api import GROUP, PLURAL, VERSION
from wallbounce_local import controlplane, procs
from wallbounce_local.components import Operator
from wallbounce_local.prometheus import Prometheus

from .conftest import Driver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHORT = [{"weight": w, "duration": "1s", "minRequests": 20} for w in (1, 10)]


def condition(status: dict[str, Any], ctype: str) -> tuple[str, str]:
    c = next(c for c in status.get("conditions") or [] if c["type"] == ctype)
    return c["status"], c["reason"]


def stalled(reason: str) -> Any:
    return lambda s: any(c["type"] == "Stalled" and c["status"] == "True" and c["reason"] == reason
                         for c in s.get("conditions") or [])


# ----- RBAC: the operator as its own user, with a Role ------------------------------------------------------


def operator_rules(without: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The namespaced part of the operator's RBAC (the kustomize base's ClusterRole), optionally missing a verb."""
    base = yaml.safe_load_all((ROOT / "manifests" / "base" / "operator-rbac.yaml").read_text())
    role = next(o for o in base if o["kind"] == "ClusterRole")
    rules = [r for r in role["rules"] if not {"namespaces", "customresourcedefinitions"} & set(r["resources"])]
    if without:
        verb, resource = without
        rules = [{**r, "verbs": [v for v in r["verbs"] if not (v == verb and resource in r["resources"])]}
                 for r in rules]
    return rules


def grant(kube: Any, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    body = {"metadata": {"name": "wallbounce-operator"}, "rules": rules}
    try:
        rbac.create_namespaced_role(namespace, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        rbac.replace_namespaced_role("wallbounce-operator", namespace, body)
        return
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "wallbounce-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wallbounce-operator"},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]})


@pytest.fixture
def own_operator(control_plane: controlplane.ControlPlane, driver: Driver, prometheus: Prometheus,
                 tmp_path: Path) -> Iterator[Operator]:
    """An operator (not started) that runs as its own user, bound by a Role in the test's namespace only."""
    user = f"operator-{driver.namespace[-6:]}"
    op = Operator(tmp_path / "operator.log", control_plane.user_kubeconfig(user), namespaces=[driver.namespace],
                  args=("--prometheus", prometheus.url, "--guard-period", "1"))
    op.user = user  # type: ignore[attr-defined]
    yield op
    op.stop()


def test_a_route_write_refused_by_rbac_stops_the_ladder_with_one_event(kube: Any, driver: Driver,
                                                                      own_operator: Operator) -> None:
    user = own_operator.user  # type: ignore[attr-defined]
    grant(kube, driver.namespace, user, operator_rules(without=("update", "httproutes")))
    own_operator.start()
    driver.healthy()
    driver.apply("denied", phases=SHORT)
    status = driver.wait_status("denied", "the write failure reported", stalled("RouteWriteFailed"), timeout=30)
    assert (status["step"], status["weight"], status["desiredWeight"]) == (1, 0, 1)  # never claims 1 %
    assert "403" in status["routeError"]
    time.sleep(6)  # retried with backoff meanwhile
    status = driver.status("denied")
    assert (status["step"], status["weight"], status["phase"]) == (1, 0, "Progressing")
    assert driver.route_weights() == (100, 0)
    assert driver.reasons("denied").count("RouteWriteFailed") == 1  # one Event, not one per tick
    grant(kube, driver.namespace, user, operator_rules())  # the missing verb, granted
    driver.wait_weight(1, timeout=60)
    driver.wait_phase("denied", "Completed", timeout=60)
    assert driver.wait_reason("denied", "RouteRecovered").count("RouteWriteFailed") == 1


# ----- the guard, whatever the state -------------------------------------------------------------------------


def test_paused_at_a_weight_a_breach_still_rolls_back(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("held", phases=[{"weight": 20, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(20)
    driver.action("held", "pause")
    driver.wait_phase("held", "Paused")
    driver.break_canary("errors")
    status = driver.wait_phase("held", "RolledBack", timeout=30)
    assert status["desiredWeight"] == 0 and "error rate" in status["message"]
    driver.wait_weight(0)


def test_a_canary_whose_pods_die_loses_its_traffic_after_the_progress_deadline(driver: Driver,
                                                                             operator: Operator) -> None:
    driver.healthy()
    driver.apply("dying", phases=[{"weight": 20, "duration": "1h", "minRequests": 20}], progressDeadline="4s")
    driver.wait_weight(20)
    driver.set_available("techsapo-canary", 0)
    began = time.monotonic()
    status = driver.wait_phase("dying", "RolledBack", timeout=30)
    assert time.monotonic() - began >= 3.5  # not before the deadline
    assert "no available replica" in status["message"]
    driver.wait_weight(0)
    assert "ProgressDeadlineExceeded" in driver.wait_reason("dying", "ProgressDeadlineExceeded")


def test_an_image_pull_backoff_revision_gets_no_traffic_and_stalls(driver: Driver, operator: Operator) -> None:
    """The new revision's ReplicaSet never gets an available replica while the previous one's pods keep the
    Deployment available: the new revision is not available, so it gets no traffic."""
    driver.healthy()
    driver.apply("pull", phases=[{"weight": 10, "duration": "1h", "minRequests": 20}], progressDeadline="3s")
    first = driver.wait_status("pull", "10 %", lambda s: s.get("weight") == 10)
    driver.set_revision("techsapo-canary", "wallbounce:does-not-exist", available=0)
    status = driver.wait_status("pull", "stalled on the new revision", stalled("ProgressDeadlineExceeded"),
                                timeout=30)
    assert status["canaryRevision"] != first["canaryRevision"]
    assert (status["weight"], status["desiredWeight"], status["step"]) == (0, 0, 1)
    assert driver.apps.read_namespaced_deployment_status("techsapo-canary", driver.namespace).status \
        .available_replicas == 1  # the Deployment alone would have said "available"
    time.sleep(2)
    assert driver.route_weights() == (100, 0)


# ----- the end of a rollout ---------------------------------------------------------------------------------


def test_convergence_moves_all_traffic_to_stable_and_a_new_revision_starts_again(driver: Driver,
                                                                               operator: Operator) -> None:
    driver.healthy()
    driver.apply("conv", phases=[{"weight": 20, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(20)
    canary_image = driver.apps.read_namespaced_deployment("techsapo-canary", driver.namespace) \
        .spec.template.spec.containers[0].image
    driver.set_revision("techsapo-stable", canary_image)  # the user promoted stable in Git
    status = driver.wait_phase("conv", "Promoted", timeout=30)
    assert condition(status, "Ready") == ("True", "Promoted")
    driver.wait_weight(0)
    driver.set_revision("techsapo-canary", "wallbounce:3")
    driver.wait_weight(20, timeout=60)
    assert driver.status("conv")["phase"] in ("Progressing", "Holding")


def test_promote_stable_copies_the_template_then_routes_all_traffic_to_stable(driver: Driver,
                                                                            operator: Operator) -> None:
    driver.healthy()
    driver.apply("full", phases=[{"weight": 1, "duration": "1s", "minRequests": 20}],
                 completion={"promoteStable": True})
    driver.wait_phase("full", "Promoting", timeout=60)
    canary = driver.apps.read_namespaced_deployment("techsapo-canary", driver.namespace)

    def applied() -> Any:
        stable = driver.apps.read_namespaced_deployment("techsapo-stable", driver.namespace)
        return stable if stable.spec.template.spec.containers[0].image == \
            canary.spec.template.spec.containers[0].image else None

    stable = procs.wait_for("the canary's template in the stable Deployment", applied, timeout=30)
    assert "wallbounce-operator" in {m.manager for m in stable.metadata.managed_fields}  # server-side apply
    assert stable.spec.template.metadata.labels == {"app": "techsapo-stable"}  # its Service still selects it
    time.sleep(2)
    assert driver.status("full")["phase"] == "Promoting"  # waits for stable's new revision to be available
    driver.roll("techsapo-stable")  # the Deployment controller's part: the new ReplicaSet becomes available
    driver.wait_phase("full", "Promoted", timeout=30)
    driver.wait_weight(0)


def test_a_pause_survives_a_new_revision(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("sticky", phases=[{"weight": w, "duration": "1h", "minRequests": 20} for w in (5, 20)])
    driver.wait_weight(5)
    driver.action("sticky", "pause")
    driver.wait_phase("sticky", "Paused")
    driver.set_revision("techsapo-canary", "wallbounce:next")
    status = driver.wait_status("sticky", "the new revision at 0, still paused",
                                lambda s: s.get("step") == 1 and s.get("desiredWeight") == 0, timeout=30)
    assert (status["phase"], status["pauseReason"]) == ("Paused", "Manual")
    driver.wait_weight(0)
    time.sleep(2)
    assert driver.status("sticky")["phase"] == "Paused"
    driver.action("sticky", "resume")
    driver.wait_weight(5)


def test_a_ladder_edit_moves_the_route_at_once(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("edit", phases=[{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2, 10)])
    before = driver.wait_status("edit", "1 %", lambda s: s.get("weight") == 1)
    driver.objects.patch_namespaced_custom_object(GROUP, VERSION, driver.namespace, PLURAL, "edit", {"spec": {
        "phases": [{"weight": w, "duration": "1h", "minRequests": 20} for w in (15, 25)]}})
    driver.wait_weight(15, timeout=20)
    generation = driver.get("edit")["metadata"]["generation"]
    status = driver.wait_status("edit", "the edit observed", lambda s: s.get("observedGeneration") == generation)
    assert (status["step"], status["weight"]) == (1, 15) and generation > before["observedGeneration"]
    assert "LadderChanged" in driver.wait_reason("edit", "LadderChanged")


# ----- what tools read ---------------------------------------------------------------------------------------


def test_kubectl_wait_ends_on_ready_and_on_stalled(driver: Driver, operator: Operator, kubectl: Path,
                                                  control_plane: controlplane.ControlPlane) -> None:
    driver.healthy()
    driver.apply("good", phases=SHORT)
    base = [str(kubectl), "--kubeconfig", str(control_plane.kubeconfig), "-n", driver.namespace, "wait"]
    ready = subprocess.run([*base, "--for=condition=Ready", "wbr/good", "--timeout=90s"], capture_output=True,
                           text=True, timeout=120)
    assert ready.returncode == 0, ready.stderr
    assert driver.status("good")["phase"] == "Completed"
    driver.create_pair("bad")
    driver.create_route("bad-route", prefix="bad")
    driver.healthy("bad")
    driver.apply("bad", prefix="bad", route="bad-route", phases=[{"weight": 10, "duration": "1h"}])
    driver.wait_weight(10, route="bad-route", prefix="bad")
    driver.break_canary("errors", prefix="bad")
    failed = subprocess.run([*base, "--for=condition=Stalled", "wbr/bad", "--timeout=60s"], capture_output=True,
                            text=True, timeout=90)
    assert failed.returncode == 0, failed.stderr
    assert driver.status("bad")["phase"] == "RolledBack"


# ----- analysis sources ----------------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An HTTP server that answers slowly (a tenant's slow "Prometheus") and counts what it was asked: a fault a
    real Prometheus cannot produce on demand (a query that takes exactly 10 s)."""

    delay = 0.0
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        time.sleep(self.delay)
        body = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"100"]}]}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def slow_server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"delay": 10.0, "hits": []})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_an_address_the_operator_does_not_allow_is_never_queried(driver: Driver, operator: Operator,
                                                                slow_server: tuple[str, type[_Recorder]]) -> None:
    url, handler = slow_server
    driver.healthy()
    driver.apply("elsewhere", analysis={"prometheus": {"address": url}})
    status = driver.wait_status("elsewhere", "refused", stalled("AnalysisSourceRefused"), timeout=30)
    assert "is not allowed by the operator" in condition_message(status, "Stalled")
    assert (status["weight"], status["desiredWeight"]) == (0, 0)
    time.sleep(3)
    assert handler.hits == []  # not one request to that address
    assert driver.route_weights() == (100, 0)


def condition_message(status: dict[str, Any], ctype: str) -> str:
    return str(next(c for c in status["conditions"] if c["type"] == ctype)["message"])


def test_a_slow_tenant_query_never_delays_another_rollouts_rollback(driver: Driver, operator: Operator,
                                                                   slow_server: tuple[str, type[_Recorder]]) -> None:
    url, handler = slow_server
    operator.stop()
    operator.args += ["--prometheus-allow", url, "--allow-query-overrides"]
    operator.start()
    driver.create_pair("slow")
    driver.create_route("slow-route", prefix="slow")
    driver.healthy("slow")
    driver.healthy()
    # tenant A: its own query, against a server that takes 10 s to answer
    driver.apply("tenant-a", prefix="slow", route="slow-route", phases=[{"weight": 5, "duration": "1h"}],
                 analysis={"prometheus": {"address": url}, "queries": {"errorRate": "vector(0)"}})
    driver.apply("tenant-b", phases=[{"weight": 10, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(10)
    driver.wait_weight(5, route="slow-route", prefix="slow")
    procs.wait_for("tenant A's slow query under way", lambda: handler.hits, timeout=30)
    driver.break_canary("errors")
    began = time.monotonic()
    driver.wait_phase("tenant-b", "RolledBack", timeout=30)
    assert time.monotonic() - began < 8  # tenant A's 10 s queries held nothing up
    a = driver.status("tenant-a")
    assert a["phase"] in ("Progressing", "Holding") and "longer than" in (a.get("analysis") or {}).get("reason", "")
