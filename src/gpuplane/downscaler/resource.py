"""The DownscalePolicy API (group, version, kind) and object references for Events."""

from __future__ import annotations

from dataclasses import dataclass

from lightkube.generic_resource import create_namespaced_resource

GROUP, VERSION, KIND, PLURAL = "gpuplane.io", "v1alpha1", "DownscalePolicy", "downscalepolicies"
DownscalePolicy = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


@dataclass(frozen=True)
class ObjectRef:
    """What an Event's involvedObject needs."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


def policy_ref(namespace: str, name: str, uid: str) -> ObjectRef:
    return ObjectRef(f"{GROUP}/{VERSION}", KIND, namespace, name, uid)


def deployment_ref(namespace: str, name: str, uid: str) -> ObjectRef:
    return ObjectRef("apps/v1", "Deployment", namespace, name, uid)
