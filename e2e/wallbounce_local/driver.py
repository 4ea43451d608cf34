"""``RolloutDriver``: WallBounceRollouts driven the way a user and a cluster would, for the operator tests, the
end-to-end suite, the benchmarks and the demo alike. One driver works in one namespace of a real API server.

Given — the objects a rollout names and their traffic::

    driver.create_pair()                         # Deployments techsapo-stable/-canary (available) + Services
    driver.create_route()                        # HTTPRoute techsapo, stable 100 / canary 0
    driver.healthy()                             # both variants answer well (through ``driver.traffic``)

When — what users, GitOps and the canary do::

    driver.apply("walk", phases=[...], rollbackStrategy="Gradual")
    driver.break_canary("errors")                # or "disagree"
    driver.action("walk", "pause")               # the annotation kubectl wallbounce writes
    driver.set_route_weights(50, 50)             # an edit by hand
    driver.set_available("techsapo-canary", 0) / driver.set_revision("techsapo-canary", "wallbounce:2")

Then — what the operator did::

    driver.wait_phase("walk", "Completed") → status;   driver.wait_weight(10) → (90, 10)
    driver.wait_status("walk", "step 2", lambda s: s.get("step") == 2);   driver.wait_reason("walk", "Completed")
    driver.status / history / events / reasons / route_weights

Every wait goes through ``procs.wait_for`` and fails with an ``AssertionError`` naming what it waited for.
Rollouts refer to a *pair*: Deployments and Services ``<prefix>-stable`` and ``<prefix>-canary``, and a route;
the driver's defaults (``prefix``, ``route``) serve the common case of one pair per namespace.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Generic, TypeVar

from wallbounce_api import ACTION_ANNOTATION, API_VERSION, GROUP, KIND, PLURAL, ROLLOUT_ANNOTATION, VERSION
from wallbounce_api.metrics import Variant

from .gateway import GATEWAY_GROUP, GATEWAY_VERSION
from .loadgen import WeightLog
from .procs import WaitTimeout, wait_for
from .traffic import TrafficControl

CONTAINER = "wallbounce"  # the stand-in Deployments' one container
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH_LABEL = "pod-template-hash"
#: Phases a rollout does not leave on its own: waiting for another one past them is pointless.
SETTLED = frozenset({"Completed", "RolledBack", "Aborted", "Paused"})

T = TypeVar("T", bound=TrafficControl)


def deployment_body(name: str, image: str) -> dict[str, Any]:
    """A one-replica Deployment whose pods never run here: its status is set by ``set_available``."""
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": CONTAINER, "image": image}]}}}}


def template_hash(template: Mapping[str, Any]) -> str:
    """A pod-template-hash for a pod template (the Deployment controller's is another hash; any stable one does)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def httproute_body(name: str, stable: str, canary: str, port: int = 80, *, canary_weight: int = 0,
                   gateway: str | None = None) -> dict[str, Any]:
    """A route with one rule whose backends are the two Services (the operator owns their weights)."""
    spec: dict[str, Any] = {"rules": [{
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"name": stable, "port": port, "weight": 100 - canary_weight},
                        {"name": canary, "port": port, "weight": canary_weight}]}]}
    if gateway:
        spec["parentRefs"] = [{"name": gateway}]
    return {"apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}", "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": spec}


class RolloutDriver(Generic[T]):
    """WallBounceRollouts in ``namespace`` of the API server ``api`` (a ``kubernetes.client.ApiClient``).

    ``prometheus`` is the address rollouts analyse against; ``analysis`` and ``phases`` are the defaults of
    every rollout ``apply`` creates (a rollout's own ``analysis`` keys win); ``traffic`` sets the pair's traffic.
    ``controller``: a Deployment controller reports availability (a real cluster), so ``set_available`` leaves
    it alone; without one (the local control plane) the driver writes Deployment status as it would.
    """

    def __init__(self, api: Any, namespace: str, *, prometheus: str, traffic: T,
                 analysis: Mapping[str, Any] | None = None, phases: Sequence[Mapping[str, Any]] | None = None,
                 prefix: str = "techsapo", route: str = "techsapo", controller: bool = False) -> None:
        from kubernetes import client

        self.api = api
        self.namespace = namespace
        self.prometheus = prometheus
        self.traffic = traffic
        self.analysis = dict(analysis or {})
        self.phases = [dict(p) for p in phases] if phases is not None else None
        self.prefix = prefix
        self.route_name = route
        self.controller = controller
        self.objects: Any = client.CustomObjectsApi(api)
        self.apps: Any = client.AppsV1Api(api)
        self.core: Any = client.CoreV1Api(api)
        self._revisions: dict[str, int] = {}  # Deployment → its revision annotation (the driver plays the controller)
        self._replicasets: dict[str, str] = {}  # Deployment → its current ReplicaSet

    # ----- given -----------------------------------------------------------------------------------------

    def create_deployment(self, name: str, *, image: str = "wallbounce:1", available: int = 1) -> None:
        self.apps.create_namespaced_deployment(self.namespace, deployment_body(name, image))
        if not self.controller:
            self.roll(name, available)

    def create_pair(self, prefix: str | None = None, *, image: str = "wallbounce:1", canary_image: str | None = None,
                    services: bool = True) -> None:
        """Deployments ``<prefix>-stable`` (``image``) and ``<prefix>-canary`` (``canary_image``, by default
        ``image`` with ``-canary`` appended: a canary that runs stable's template is already promoted), available,
        and (``services``) their Services."""
        for variant in Variant:
            name = f"{prefix or self.prefix}-{variant}"
            own = image if variant == Variant.STABLE else (canary_image or f"{image}-canary")
            self.create_deployment(name, image=own)
            if services:
                self.core.create_namespaced_service(self.namespace, {"metadata": {"name": name},
                                                                     "spec": {"ports": [{"port": 80}]}})

    def create_route(self, route: str | None = None, prefix: str | None = None) -> None:
        """An HTTPRoute at stable 100 / canary 0 over the pair's Services."""
        p = prefix or self.prefix
        self.create_route_body(httproute_body(route or self.route_name, f"{p}-stable", f"{p}-canary"))

    def create_route_body(self, body: Mapping[str, Any]) -> None:
        self.objects.create_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, "httproutes",
                                                     dict(body))

    def healthy(self, prefix: str | None = None) -> None:
        """Both variants of the pair answer well."""
        self.traffic.healthy(prefix or self.prefix)

    # ----- when ------------------------------------------------------------------------------------------

    def rollout_body(self, name: str, *, phases: Sequence[Mapping[str, Any]] | None = None,
                     analysis: Mapping[str, Any] | None = None, route: str | None = None,
                     prefix: str | None = None, **spec: Any) -> dict[str, Any]:
        """A WallBounceRollout of the pair ``prefix`` over ``route``; ``spec`` adds or replaces spec fields
        (``rollbackStrategy``, ``paused``, ``trafficRouting``…)."""
        p = prefix or self.prefix
        body_spec: dict[str, Any] = {
            "stable": {"deployment": f"{p}-stable", "service": f"{p}-stable"},
            "canary": {"deployment": f"{p}-canary", "service": f"{p}-canary"},
            "trafficRouting": {"gatewayAPI": {"httpRoute": route or self.route_name}},
            "analysis": {"prometheus": {"address": self.prometheus}, **self.analysis, **(analysis or {})},
        }
        chosen = phases if phases is not None else self.phases
        if chosen is not None:
            body_spec["phases"] = [dict(p) for p in chosen]
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": self.namespace},
                "spec": {**body_spec, **spec}}

    def apply(self, name: str, *, own_route: bool = True, **options: Any) -> dict[str, Any]:
        """Create the rollout ``rollout_body(name, **options)`` describes (its HTTPRoute annotated for it first,
        unless ``own_route`` is false); returns the object as created."""
        body = self.rollout_body(name, **options)
        gateway_route = (body["spec"].get("trafficRouting") or {}).get("gatewayAPI")
        if own_route and gateway_route:
            self.own_route(gateway_route["httpRoute"], name)
        return self.create(body)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.objects.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, dict(body)))

    def delete(self, name: str) -> None:
        """Delete the rollout (the route stays as it is); no error when it is already gone."""
        from kubernetes import client

        try:
            self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def delete_all(self) -> None:
        for name in self.names():
            self.delete(name)

    def action(self, name: str, verb: str) -> None:
        """``pause``/``resume``/``abort``/``promote``/``promote-full``/``retry``, through the action annotation."""
        self.objects.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                    {"metadata": {"annotations": {ACTION_ANNOTATION: verb}}})

    def break_canary(self, how: str = "errors", prefix: str | None = None) -> None:
        """The canary fails requests (``errors``) or its providers disagree (``disagree``)."""
        self.traffic.break_canary(prefix or self.prefix, how)

    # --- the Deployment controller's part (there is none on the local control plane) ---

    def roll(self, deployment: str, available: int = 1) -> str:
        """A new revision, as the Deployment controller makes one: the Deployment's revision annotation goes up and
        a ReplicaSet of its current pod template (named and labelled with its pod-template-hash, owned by it)
        reports ``available`` replicas. Returns the pod-template-hash. (No GET: the operator's tests count them.)"""
        revision = str(self._revisions.get(deployment, 0) + 1)
        self._revisions[deployment] = int(revision)
        dep = self.apps.patch_namespaced_deployment(deployment, self.namespace, {
            "metadata": {"annotations": {REVISION_ANNOTATION: revision}}})
        template = self.api.sanitize_for_serialization(dep.spec.template)
        digest = template_hash(template)
        labels = {**(template["metadata"].get("labels") or {}), TEMPLATE_HASH_LABEL: digest}
        name = f"{deployment}-{digest}"
        self.apps.create_namespaced_replica_set(self.namespace, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "labels": labels, "annotations": {REVISION_ANNOTATION: revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                              "uid": dep.metadata.uid, "controller": True}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {**template, "metadata": {**template["metadata"], "labels": labels}}}})
        self._replicasets[deployment] = name
        self.set_available(deployment, available, generation=dep.metadata.generation)  # annotations bump it
        self.traffic.revision(deployment, digest)
        return digest

    def current_replicaset(self, deployment: str) -> Any:
        """The ReplicaSet whose revision annotation equals the Deployment's (as ``kubectl rollout status``)."""
        dep = self.apps.read_namespaced_deployment(deployment, self.namespace)
        revision = (dep.metadata.annotations or {}).get(REVISION_ANNOTATION)
        for rs in self.apps.list_namespaced_replica_set(self.namespace).items:
            owners = [o.name for o in rs.metadata.owner_references or []]
            if deployment in owners and (rs.metadata.annotations or {}).get(REVISION_ANNOTATION) == revision:
                return rs
        raise LookupError(f"no ReplicaSet of the current revision of {deployment}")

    def current_revision(self, deployment: str) -> str:
        """The pod-template-hash of the Deployment's current ReplicaSet: the ``revision`` its metrics carry."""
        return str(self.current_replicaset(deployment).metadata.labels[TEMPLATE_HASH_LABEL])

    def set_available(self, deployment: str, available: int, generation: int | None = None) -> None:
        """What a Deployment controller would report: the current revision's ReplicaSet has ``available`` ready
        and available replicas of one, and so has the Deployment."""
        if self.controller:
            return
        rs = self._replicasets.get(deployment) or self.current_replicaset(deployment).metadata.name
        self.apps.patch_namespaced_replica_set_status(rs, self.namespace, {"status": {
            "replicas": 1, "readyReplicas": available, "availableReplicas": available}})
        if generation is None:
            generation = self.apps.read_namespaced_deployment(deployment, self.namespace).metadata.generation
        self.apps.patch_namespaced_deployment_status(deployment, self.namespace, {"status": {
            "observedGeneration": generation, "replicas": 1, "readyReplicas": available,
            "availableReplicas": available, "updatedReplicas": 1}})

    def set_revision(self, deployment: str, image: str, available: int = 1) -> str:
        """A new pod template (a new revision) whose ReplicaSet has ``available`` replicas, while the previous
        revision's pods keep serving (the Deployment counts one available replica, as during a rollout whose new
        pods cannot start: ImagePullBackOff). Returns the new pod-template-hash."""
        self.apps.patch_namespaced_deployment(deployment, self.namespace, {"spec": {"template": {"spec": {
            "containers": [{"name": CONTAINER, "image": image}]}}}})
        if self.controller:
            return ""
        digest = self.roll(deployment, available)
        self.apps.patch_namespaced_deployment_status(deployment, self.namespace, {"status": {
            "replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}})
        return digest

    def own_route(self, route: str, rollout: str) -> None:
        """As the route's owner does: annotate it for the one rollout that may set its weights."""
        self.objects.patch_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, "httproutes",
                                                    route, {"metadata": {"annotations": {ROLLOUT_ANNOTATION: rollout}}})

    def set_route_weights(self, stable: int, canary: int, route: str | None = None,
                          prefix: str | None = None) -> None:
        """Edit the route's weights by hand, as a user or a GitOps re-sync would."""
        p = prefix or self.prefix
        body = self.route(route)
        for ref in body["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = {f"{p}-stable": stable, f"{p}-canary": canary}.get(ref["name"], ref.get("weight"))
        self.objects.replace_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, self.namespace, "httproutes",
                                                      route or self.route_name, body)

    # ----- then ------------------------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def names(self) -> list[str]:
        listed = self.objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return [str(item["metadata"]["name"]) for item in listed["items"]]

    def statuses(self, cluster_wide: bool = False) -> dict[str, dict[str, Any]]:
        """Every rollout's status in one LIST, by name (``namespace/name`` when ``cluster_wide``)."""
        if cluster_wide:  # in pages: thousands of rollouts in one answer break on a busy API server
            items, token = [], None
            while True:
                page = self.objects.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=500,
                                                               **({"_continue": token} if token else {}))
                items += page["items"]
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
            return {f"{o['metadata']['namespace']}/{o['metadata']['name']}": dict(o.get("status") or {})
                    for o in items}
        items = self.objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)["items"]
        return {str(o["metadata"]["name"]): dict(o.get("status") or {}) for o in items}

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def history(self, name: str) -> list[dict[str, Any]]:
        """The last transitions (``time``, ``from``, ``to``, ``step``, ``weight``, ``reason``, ``message``)."""
        return list(self.status(name).get("history") or [])

    def events(self, name: str) -> list[tuple[str, str]]:
        """``(reason, message)`` of the Events about the rollout, oldest first."""
        listed = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        items = sorted(listed.items, key=lambda e: (e.metadata.creation_timestamp, e.metadata.name))
        return [(str(e.reason), str(e.message)) for e in items]

    def reasons(self, name: str) -> list[str]:
        return [reason for reason, _ in self.events(name)]

    def route(self, route: str | None = None) -> dict[str, Any]:
        return dict(self.objects.get_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, self.namespace,
                                                              "httproutes", route or self.route_name))

    def route_weights(self, route: str | None = None, prefix: str | None = None) -> tuple[int, int]:
        """``(stable, canary)`` weights of the route's first rule."""
        p = prefix or self.prefix
        refs = self.route(route)["spec"]["rules"][0]["backendRefs"]
        by_name = {r["name"]: int(r.get("weight", 1)) for r in refs}
        return by_name[f"{p}-stable"], by_name[f"{p}-canary"]

    def wait_status(self, name: str, what: str, check: Callable[[dict[str, Any]], Any],
                    timeout: float = 60.0, every: float = 0.2) -> dict[str, Any]:
        """Wait until ``check(status)`` holds; returns that status."""
        def reached() -> list[dict[str, Any]] | None:
            st = self.status(name)
            return [st] if check(st) else None  # a list: an empty status that passes is still an answer

        return dict(wait_for(f"{name}: {what}", reached, timeout, every)[0])

    def wait_phase(self, name: str, phase: str, timeout: float = 90.0, *, fail_on: Collection[str] = (),
                   **want: Any) -> dict[str, Any]:
        """Wait for ``phase`` (and the status fields ``want``, e.g. ``step=2``); returns the status. Reaching a
        phase of ``fail_on`` (e.g. ``SETTLED``) instead fails at once rather than at the timeout."""

        def reached(st: dict[str, Any]) -> bool:
            now = st.get("phase")
            if now in fail_on and now != phase:
                raise AssertionError(f"{name} went {now} while waiting for {phase}: {st.get('message')}")
            return now == phase and all(st.get(k) == v for k, v in want.items())

        return self.wait_status(name, f"phase {phase} {want or ''}".rstrip(), reached, timeout)

    def wait_verdict(self, name: str, verdict: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the last analysis says ``verdict``; returns the status."""
        return self.wait_status(name, f"a {verdict} verdict",
                                lambda s: (s.get("analysis") or {}).get("verdict") == verdict, timeout)

    def wait_weight(self, canary: int, route: str | None = None, prefix: str | None = None, timeout: float = 30.0,
                    every: float = 0.2) -> tuple[int, int]:
        """Wait until the route carries ``canary`` % to the canary and the rest to the stable."""
        want = (100 - canary, canary)
        reached: tuple[int, int] = wait_for(f"route {route or self.route_name} at {want}",
                                            lambda: (w := self.route_weights(route, prefix)) == want and w,
                                            timeout, every)
        return reached

    def wait_reason(self, name: str, reason: str, timeout: float = 20.0) -> list[str]:
        """Wait until an Event with ``reason`` is posted (Events follow the status and route writes: a test that
        saw the status must not race them); returns every reason so far."""
        return list(wait_for(f"event {reason} on {name}", lambda: (r := self.reasons(name)) and reason in r and r,
                             timeout))

    def record_weights(self, log: WeightLog, stop: threading.Event, every: float = 0.1, timeout: float = 300.0,
                       route: str | None = None) -> None:
        """Record the route's canary weight into ``log`` as it changes, until ``stop`` is set (for a thread)."""

        def tick() -> bool:
            try:
                log.record(self.route_weights(route)[1])
            except Exception:  # noqa: BLE001, S110 - a transient API error: poll again
                pass
            return stop.is_set()

        try:
            wait_for("the weight recorder to be stopped", tick, timeout, every)
        except WaitTimeout:
            pass  # a forgotten recorder ends on its own
