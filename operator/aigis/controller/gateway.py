"""The gateway sidecar's configuration, rendered by the operator into a ConfigMap.

The admission webhook mounts `aigis-gateway-<workload>` into every injected pod; the gateway
reloads it when it changes. The content is `aigis.gateway.config.render_gateway_config`, the
same function the webhook hashes for the `aigis.dev/gateway-config-hash` annotation, so a pod's
annotation says which configuration it started with.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aigis.api.aiworkload import AIWorkload, AIWorkloadSpec
from aigis.api.common import ObjectMeta
from aigis.egress.networkpolicy import MANAGED_BY, MANAGED_BY_LABEL, WORKLOAD_LABEL, WorkloadRef
from aigis.egress.networkpolicy import workload_label_value as label_value
from aigis.gateway.config import (
    CONFIG_FILE_NAME,
    dump_gateway_config,
    gateway_config_map_name,
    render_gateway_config,
)


def render_gateway_config_text(
    ref: WorkloadRef, spec: AIWorkloadSpec, *, trust_declared_regions: bool = True
) -> str:
    """The gateway's config file for this workload, exactly as the sidecar reads it.

    `trust_declared_regions` is the governing policies' answer
    (`ComplianceReport.trust_declared_regions`), so the gateway counts a declared region exactly
    when the compliance check does.
    """
    workload = AIWorkload(metadata=ObjectMeta(name=ref.name, namespace=ref.namespace), spec=spec)
    config = render_gateway_config(workload, trust_declared_regions=trust_declared_regions)
    return dump_gateway_config(config)


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def render_gateway_config_map(
    ref: WorkloadRef, spec: AIWorkloadSpec, *, trust_declared_regions: bool = True
) -> dict[str, Any]:
    """The ConfigMap manifest, owned by the AIWorkload so it goes when the workload goes."""
    text = render_gateway_config_text(ref, spec, trust_declared_regions=trust_declared_regions)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": gateway_config_map_name(ref.name),
            "namespace": ref.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_LABEL: label_value(ref.name)},
            "annotations": {"aigis.dev/config-hash": config_hash(text)},
            "ownerReferences": [
                {
                    "apiVersion": "aigis.dev/v1alpha1",
                    "kind": "AIWorkload",
                    "name": ref.name,
                    "uid": ref.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {CONFIG_FILE_NAME: text},
    }
