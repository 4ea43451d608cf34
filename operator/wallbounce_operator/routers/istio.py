"""Istio VirtualService, in the named http routes (all when none are named). Two forms:

- two hosts: destinations whose host is the stable or the canary Service;
- two subsets of one host (``trafficRouting.istio.destinationRule``): destinations whose host is the rule's host
  (default the stable Service) with subset ``stableSubset`` or ``canarySubset``.

Every http route that routes to either must route to exactly the two (once each, in the route's namespace); those
get 100 - weight and weight."""

from __future__ import annotations

from typing import Any

from ..model import RolloutSpec
from .base import Pair, RouteInvalid, exactly_the_pair


def _split_host(host: str, namespace: str) -> tuple[str, str]:
    """(service, namespace) of a destination host: ``svc``, ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    return parts[0], parts[1]


class Istio:
    group = "networking.istio.io"
    version = "v1"
    plural = "virtualservices"
    kind = "VirtualService"

    def pairs(self, obj: dict[str, Any], spec: RolloutSpec) -> list[Pair]:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        istio = spec.routing.istio
        assert istio is not None
        rule = istio.destination_rule
        wanted = set(istio.routes)

        def key(d: dict[str, Any]) -> tuple[str, str, str]:
            dest = d.get("destination") or {}
            service, ns = _split_host(str(dest.get("host", "")), namespace)
            return service, ns, str(dest.get("subset", ""))

        if rule is None:
            names = (spec.stable.service, spec.canary.service)
            stable_key, canary_key = (names[0], namespace, ""), (names[1], namespace, "")
            ours = {names[0], names[1]}

            def touches(d: dict[str, Any]) -> bool:
                return key(d)[0] in ours

            def matches(d: dict[str, Any], k: tuple[str, str, str]) -> bool:
                return key(d)[:2] == k[:2]
        else:
            host = rule.host or spec.stable.service
            names = (f"{host}/{rule.stable_subset}", f"{host}/{rule.canary_subset}")
            stable_key, canary_key = (host, namespace, rule.stable_subset), (host, namespace, rule.canary_subset)

            def touches(d: dict[str, Any]) -> bool:
                return key(d)[0] == host

            def matches(d: dict[str, Any], k: tuple[str, str, str]) -> bool:
                return key(d) == k

        pairs = []
        for i, http in enumerate((obj.get("spec") or {}).get("http") or []):
            if wanted and http.get("name") not in wanted:
                continue
            dests = http.get("route") or []
            if not any(touches(d) for d in dests):
                continue
            where = f"VirtualService {namespace}/{meta.get('name')} http[{http.get('name') or i}]"
            pairs.append(exactly_the_pair(dests, [matches(d, stable_key) for d in dests],
                                          [matches(d, canary_key) for d in dests], where, names))
        if not pairs:
            among = f" among http routes {sorted(wanted)}" if wanted else ""
            raise RouteInvalid(f"VirtualService {namespace}/{meta.get('name')} has no http route{among} with "
                               f"{names[0]} and {names[1]} as destinations")
        return pairs
