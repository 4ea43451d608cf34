"""Notifications through Apprise to a local HTTP receiver, with Events in the real API server: routes by reason,
the idempotency key (the Event's name) in the header and the payload, at-least-once delivery (a failing receiver
gets the same key again until it answers), the Event marked once delivered, a restart sending what was left, a
namespace's ConfigMap choosing among the operator's targets, no secret in the logs; and the operator process
notifying an abort, with its events and rollout metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from wallbounce_api import GROUP, PLURAL, VERSION
from wallbounce_local import controlplane, procs
from wallbounce_local.components import Operator
from wallbounce_operator import notifications
from wallbounce_operator.kube import Kube
from wallbounce_operator.model import PendingEvent
from wallbounce_operator.notifications import NOTIFIED_ANNOTATION, Config, Notifier

from .conftest import Driver

pytestmark = pytest.mark.integration
SECRET = "s3cret-token-value"


class Receiver:
    """A local webhook: records every POST (path, headers, JSON body); answers 500 to the first ``fail`` ones."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body or b"{}")})
                status = 500 if receiver.fail > 0 else 200
                receiver.fail -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://user:{SECRET}@127.0.0.1:{self.port}/{path}"

    def wait(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, self.requests
        return self.requests


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def config(receiver: Receiver, **extra: Any) -> Config:
    return Config.model_validate({"targets": {"hook": receiver.url("hook"), "team": receiver.url("team")},
                                  "routes": [{"reasons": ["RolledBack", "Aborted"], "targets": ["hook"]}], **extra})


def rollout(kube: Any, namespace: str, name: str = "wbr") -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WallBounceRollout",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"stable": {"deployment": "s", "service": "s"}, "canary": {"deployment": "c", "service": "c"},
                     "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}}}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                                              body))


async def post(kube: Any, obj: dict[str, Any], reason: str, kind: str = "Warning",
               age: float = 0) -> PendingEvent:
    """An Event posted exactly as the operator posts it (its outbox entry and ``Kube.emit``)."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
    entry = PendingEvent(name=f"{obj['metadata']['name']}.{time.time_ns():x}", reason=reason, time=when,
                         message=f"{reason} for a test", type=kind)  # type: ignore[arg-type]
    assert await Kube(kube).emit(obj, entry)
    return entry


def annotation(kube: Any, namespace: str, event: str) -> str | None:
    ev = client.CoreV1Api(kube).read_namespaced_event(event, namespace)
    return (ev.metadata.annotations or {}).get(NOTIFIED_ANNOTATION)


async def wait_annotation(kube: Any, namespace: str, event: str) -> str | None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = annotation(kube, namespace, event)
        if found:
            return found
        await asyncio.sleep(0.1)
    return None


async def test_routed_events_are_delivered_with_their_idempotency_key(kube: Any, wbr_crd: str, namespace: str,
                                                                      receiver: Receiver,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    obj = rollout(kube, namespace)
    rolled_back = await post(kube, obj, "RolledBack")
    step = await post(kube, obj, "StepStarted", "Normal")
    notifier = Notifier(config(receiver), kube, namespaces=[namespace])  # the cluster holds other tests' Events
    await notifier.start()
    try:
        obj["status"] = {"phase": "RolledBack", "step": 2, "steps": 6, "weight": 0}
        notifier.posted(obj, [rolled_back, step])
        notifier.posted(obj, [rolled_back])  # handed over twice: sent once
        assert await wait_annotation(kube, namespace, rolled_back.name) == "hook"
        await asyncio.sleep(1)
    finally:
        await notifier.stop()
    [request] = receiver.requests  # StepStarted is routed nowhere
    assert request["path"].startswith("/hook")
    assert request["headers"]["Idempotency-Key"] == rolled_back.name
    assert request["headers"]["Authorization"].startswith("Basic ")
    body = request["body"]
    assert (body["event"], body["reason"], body["namespace"], body["rollout"], body["eventType"]) == (
        rolled_back.name, "RolledBack", namespace, "wbr", "Warning")
    assert body["title"] == f"[Warning] RolledBack: {namespace}/wbr" and body["type"] == "warning"
    assert "phase RolledBack, step 2/6, canary weight 0%" in body["message"]
    assert rolled_back.name in body["message"]
    assert annotation(kube, namespace, step.name) is None


async def test_a_failing_receiver_gets_it_again_with_the_same_key(kube: Any, wbr_crd: str, namespace: str,
                                                                  receiver: Receiver,
                                                                  caplog: pytest.LogCaptureFixture,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "RETRY", (0.2, 1.0))
    obj = rollout(kube, namespace)
    aborted = await post(kube, obj, "Aborted")
    receiver.fail = 2
    notifier = Notifier(config(receiver), kube, namespaces=[namespace])  # the cluster holds other tests' Events
    await notifier.start()
    try:
        notifier.posted(obj, [aborted])
        assert await wait_annotation(kube, namespace, aborted.name) == "hook"
    finally:
        await notifier.stop()
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.requests]
    assert keys == [aborted.name] * 3, "at least once: the same key until the receiver answers 2xx"
    assert "to target hook failed (attempt 1)" in caplog.text
    assert SECRET not in caplog.text and f"127.0.0.1:{receiver.port}" not in caplog.text, "no URL in the logs"


async def test_a_restart_sends_what_was_left_and_only_that(kube: Any, wbr_crd: str, namespace: str,
                                                           receiver: Receiver) -> None:
    """The Events are the durable record: unmarked ones younger than maxAge are sent after a restart."""
    obj = rollout(kube, namespace)
    left = await post(kube, obj, "RolledBack")  # posted, then the operator died before notifying
    done = await post(kube, obj, "Aborted")
    client.CoreV1Api(kube).patch_namespaced_event(done.name, namespace, {
        "metadata": {"annotations": {NOTIFIED_ANNOTATION: "hook"}}})
    old = await post(kube, obj, "RolledBack", age=7200)
    notifier = Notifier(config(receiver, maxAge="1h"), kube, namespaces=[namespace])
    await notifier.start()
    try:
        assert await wait_annotation(kube, namespace, left.name) == "hook"
        await asyncio.sleep(1)
    finally:
        await notifier.stop()
    assert [r["headers"]["Idempotency-Key"] for r in receiver.requests] == [left.name]
    assert annotation(kube, namespace, old.name) is None


async def test_a_namespace_chooses_among_the_operators_targets(kube: Any, wbr_crd: str, namespace: str,
                                                               receiver: Receiver,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    obj = rollout(kube, namespace)
    routes = [{"reasons": ["*"], "targets": ["team"]}, {"reasons": ["Aborted"], "targets": ["elsewhere"]}]
    client.CoreV1Api(kube).create_namespaced_config_map(namespace, {
        "metadata": {"name": "wallbounce-notifications"}, "data": {"routes": yaml.safe_dump(routes)}})
    step = await post(kube, obj, "StepStarted", "Normal")
    aborted = await post(kube, obj, "Aborted")
    notifier = Notifier(config(receiver), kube, namespaces=[namespace])  # the cluster holds other tests' Events
    await notifier.start()
    try:
        notifier.posted(obj, [step, aborted])
        assert await wait_annotation(kube, namespace, aborted.name) == "team"
        assert await wait_annotation(kube, namespace, step.name) == "team"
    finally:
        await notifier.stop()
    assert sorted((r["path"].split("?")[0], r["body"]["reason"]) for r in receiver.requests) == [
        ("/team", "Aborted"), ("/team", "StepStarted")], "the namespace's routes replace the operator's"
    assert "names targets the operator does not have: ['elsewhere']" in caplog.text


def test_a_bad_notifications_file_is_refused_naming_the_target(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(yaml.safe_dump({"targets": {"oncall": "nosuchscheme://x/y"}, "routes": []}))
    with pytest.raises(ValueError, match="target 'oncall' is not a URL Apprise can send to") as err:
        Config.load(path)
    assert "nosuchscheme" not in str(err.value)
    path.write_text(yaml.safe_dump({"targets": {}, "routes": [{"targets": ["ghost"]}]}))
    with pytest.raises(ValueError, match=r"unknown targets \['ghost'\]"):
        Config.load(path)


def test_the_operator_notifies_an_abort(driver: Driver, control_plane: controlplane.ControlPlane, prometheus: Any,
                                        receiver: Receiver, tmp_path: Path, kube: Any) -> None:
    """The operator process with --notifications: an abort reaches the receiver under its Event's name, the Event is
    marked, and /metrics has the event, info, rollout info and threshold series."""
    path = tmp_path / "notifications.yaml"
    path.write_text(yaml.safe_dump({"targets": {"hook": receiver.url("hook")},
                                    "routes": [{"reasons": ["Aborted"], "targets": ["hook"]}]}))
    op = Operator(tmp_path / "operator.log", control_plane.kubeconfig, namespaces=[driver.namespace],
                  args=("--prometheus", prometheus.url, "--guard-period", "1", "--notifications", str(path)))
    try:
        op.start()
    except procs.StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        driver.healthy()
        driver.apply("note", phases=[{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 50)])
        driver.wait_weight(1)
        driver.action("note", "abort")
        driver.wait_phase("note", "Aborted", timeout=30)
        [request] = receiver.wait(1)
        events = client.CoreV1Api(kube).list_namespaced_event(driver.namespace,
                                                              field_selector="reason=Aborted").items
        assert [e.metadata.name for e in events] == [request["headers"]["Idempotency-Key"]]
        assert request["body"]["reason"] == "Aborted" and request["body"]["rollout"] == "note"
        deadline = time.monotonic() + 10
        while annotation(kube, driver.namespace, events[0].metadata.name) != "hook" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert annotation(kube, driver.namespace, events[0].metadata.name) == "hook"
        text = urllib.request.urlopen(f"{op.url}/metrics", timeout=5).read().decode()
        assert 'wallbounce_rollout_events_total{reason="Aborted",type="Normal"}' in text or (
            'wallbounce_rollout_events_total{reason="Aborted",type="Warning"}' in text)
        assert 'wallbounce_operator_info{version="' in text
        assert f'wallbounce_rollout_info{{name="note",namespace="{driver.namespace}",phase="Aborted",step="1"}} 1.0' \
            in text
        assert (f'wallbounce_rollout_threshold{{gate="rollback",metric="error_rate",namespace="{driver.namespace}",'
                f'rollout="note"}} 0.008') in text
        assert 'wallbounce_operator_notifications_total{result="sent",target="hook"} 1.0' in text
        assert SECRET not in (tmp_path / "operator.log").read_text()
    finally:
        op.stop()
