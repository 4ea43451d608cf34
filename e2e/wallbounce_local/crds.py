"""Our CRD (``crds/wallbouncerollouts.yaml`` of the checkout) in an API server, Established before it returns."""

from __future__ import annotations

from typing import Any

import yaml

from . import testbin, thirdparty


def wallbounce_crd() -> dict[str, Any]:
    return dict(yaml.safe_load((testbin.repo_root() / "crds" / "wallbouncerollouts.yaml").read_text()))


def install_wallbounce_crd(api: Any) -> str:
    """Create the WallBounceRollout CRD (already there is fine) and wait until it is Established; its name."""
    from kubernetes import client

    crd = wallbounce_crd()
    try:
        ext: Any = client.ApiextensionsV1Api(api)  # bodies are plain dicts
        ext.create_custom_resource_definition(crd)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    thirdparty.wait_established(api, [crd["metadata"]["name"]])
    return str(crd["metadata"]["name"])
