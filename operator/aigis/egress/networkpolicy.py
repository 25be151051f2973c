"""Compiling an AIWorkload's egress into a NetworkPolicy (and a CiliumNetworkPolicy).

Pure: the shell passes in what it looked up (the addresses of declared hosts, the pod selectors
of declared Services) and applies what comes out.

What a standard NetworkPolicy can and cannot guarantee:
- It selects pods, not containers: the app container and the gateway sidecar share one network
  identity, so the policy cannot let only the gateway reach the provider hosts. aigis closes
  that gap elsewhere: the provider keys live only in the gateway, so the app cannot use the
  provider directly even though its packets could reach it.
- It has no host names: declared hosts are allowed as the IP addresses they resolve to (see
  `aigis.egress.addresses`), which is coarse for hosts behind shared CDNs, and a `*.` wildcard
  cannot be expressed at all. Cilium's `toFQDNs` closes both gaps; aigis writes a
  CiliumNetworkPolicy where Cilium is installed.
- It is enforced only where the CNI implements NetworkPolicy.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigis.api.aiworkload import AIWorkloadSpec, EgressPort, ServiceTarget
from aigis.api.common import GROUP, VERSION, LabelSelector

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "aigis"
WORKLOAD_LABEL = f"{GROUP}/workload"
NAME_PREFIX = "aigis-"
MAX_OBJECT_NAME = 253


@dataclass(frozen=True, slots=True)
class ClusterDns:
    """Where pods resolve names; every policy allows it, or nothing would resolve."""

    namespace: str = "kube-system"
    pod_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    port: int = 53


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """The AIWorkload a policy is for: its identity, for names, labels and ownership."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True, slots=True)
class RenderedPolicy:
    """A policy to apply, and what it could not express (for the status condition)."""

    manifest: dict[str, Any]
    notes: tuple[str, ...] = ()


def policy_name(workload_name: str) -> str:
    """`aigis-<workload>`, shortened with a hash suffix when that would exceed 253 characters."""
    name = NAME_PREFIX + workload_name
    if len(name) <= MAX_OBJECT_NAME:
        return name
    digest = hashlib.sha256(workload_name.encode()).hexdigest()[:10]
    return name[: MAX_OBJECT_NAME - 11] + "-" + digest


def workload_label_value(workload_name: str) -> str:
    """A label value (at most 63 characters) that identifies the workload."""
    if len(workload_name) <= 63:
        return workload_name
    digest = hashlib.sha256(workload_name.encode()).hexdigest()[:10]
    return workload_name[:52].rstrip("-.") + "-" + digest


def _metadata(workload: WorkloadRef) -> dict[str, Any]:
    return {
        "name": policy_name(workload.name),
        "namespace": workload.namespace,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY,
            WORKLOAD_LABEL: workload_label_value(workload.name),
        },
        "ownerReferences": [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "AIWorkload",
                "name": workload.name,
                "uid": workload.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def _ports(ports: Sequence[EgressPort]) -> list[dict[str, Any]]:
    return [{"protocol": p.protocol, "port": p.port} for p in ports]


def _host_cidr(address: str) -> str:
    parsed = ipaddress.ip_address(address)
    return f"{parsed}/{parsed.max_prefixlen}"


def render_network_policy(
    workload: WorkloadRef,
    spec: AIWorkloadSpec,
    *,
    addresses: Mapping[str, Sequence[str]],
    service_selectors: Mapping[tuple[str, str], Mapping[str, str] | None],
    excluded: frozenset[int] = frozenset(),
    dns: ClusterDns = ClusterDns(),
) -> RenderedPolicy:
    """The NetworkPolicy that allows the workload's pods the declared egress and nothing else.

    `addresses` maps each declared host to the IPs currently allowed for it; `service_selectors`
    maps (namespace, name) of each declared Service to its pod selector (None when the Service
    is missing or has no selector). Entries in `excluded` (non-compliant in Enforce mode) are
    left out. Ingress is not touched: the policy only lists Egress in policyTypes.
    """
    rules: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": dns.namespace}
                    },
                    "podSelector": {"matchLabels": dict(dns.pod_labels)},
                }
            ],
            "ports": [
                {"protocol": "UDP", "port": dns.port},
                {"protocol": "TCP", "port": dns.port},
            ],
        }
    ]
    notes: list[str] = []
    for i, entry in enumerate(spec.egress):
        where = f"spec.egress[{i}]"
        if i in excluded:
            notes.append(f"{where} left out: it breaks a region or host rule")
            continue
        peers: list[dict[str, Any]] = []
        if entry.host is not None:
            if entry.host.startswith("*."):
                notes.append(
                    f"{where}: wildcard {entry.host} cannot be expressed in a NetworkPolicy "
                    "(no host names); it is reachable only where Cilium enforces toFQDNs"
                )
                continue
            found = addresses.get(entry.host, ())
            if not found:
                notes.append(f"{where}: no addresses known yet for {entry.host}")
                continue
            peers = [{"ipBlock": {"cidr": _host_cidr(a)}} for a in found]
        elif entry.cidr is not None:
            block: dict[str, Any] = {"cidr": entry.cidr}
            if entry.except_:
                block["except"] = list(entry.except_)
            peers = [{"ipBlock": block}]
        elif entry.service is not None:
            service = entry.service
            if service.name is not None:
                namespace = service.namespace or workload.namespace
                selector = service_selectors.get((namespace, service.name))
                if not selector:
                    notes.append(
                        f"{where}: Service {namespace}/{service.name} not found or has no "
                        "selector; allowed once it exists"
                    )
                    continue
                peers = [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        },
                        "podSelector": {"matchLabels": dict(selector)},
                    }
                ]
            else:
                peer: dict[str, Any] = {}
                if service.namespace_selector is not None:
                    peer["namespaceSelector"] = service.namespace_selector.to_kubernetes()
                if service.pod_selector is not None:
                    peer["podSelector"] = service.pod_selector.to_kubernetes()
                peers = [peer]
        rules.append({"to": peers, "ports": _ports(entry.ports)})
    manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(workload),
        "spec": {
            "podSelector": spec.selector.to_kubernetes(),
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }
    return RenderedPolicy(manifest, tuple(notes))


def _cilium_selector(labels: Mapping[str, str], namespace: str) -> dict[str, Any]:
    selector = {f"k8s:{k}": v for k, v in labels.items()}
    selector["k8s:io.kubernetes.pod.namespace"] = namespace
    return {"matchLabels": selector}


def _prefixed(selector: LabelSelector | None, prefix: str) -> dict[str, Any]:
    """A selector with every label key prefixed, in Cilium's endpoint-selector form."""
    if selector is None:
        return {}
    result: dict[str, Any] = {}
    if selector.match_labels:
        result["matchLabels"] = {prefix + k: v for k, v in selector.match_labels.items()}
    if selector.match_expressions:
        result["matchExpressions"] = [
            {**r.model_dump(mode="json", by_alias=True, exclude_none=True), "key": prefix + r.key}
            for r in selector.match_expressions
        ]
    return result


def _cilium_peer(service: ServiceTarget, own_namespace: str) -> dict[str, Any]:
    """Pods picked by selectors, as one Cilium endpoint selector.

    Cilium exposes a pod's namespace labels as `io.cilium.k8s.namespace.labels.<key>`, so a
    namespaceSelector becomes prefixed requirements; without one, the pod's own namespace.
    """
    pods = _prefixed(service.pod_selector, "k8s:")
    namespaces = _prefixed(service.namespace_selector, "k8s:io.cilium.k8s.namespace.labels.")
    if service.namespace_selector is None:
        namespaces = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": own_namespace}}
    merged: dict[str, Any] = {}
    for part in (pods, namespaces):
        for key, value in part.items():
            if key == "matchLabels":
                merged.setdefault(key, {}).update(value)
            else:
                merged.setdefault(key, []).extend(value)
    return merged


def render_cilium_network_policy(
    workload: WorkloadRef,
    spec: AIWorkloadSpec,
    *,
    service_selectors: Mapping[tuple[str, str], Mapping[str, str] | None],
    excluded: frozenset[int] = frozenset(),
    dns: ClusterDns = ClusterDns(),
) -> RenderedPolicy:
    """The CiliumNetworkPolicy for the same egress, with hosts as `toFQDNs`.

    Cilium learns a host's addresses from the DNS answers its proxy sees, so the DNS rule
    carries an L7 `dns` section; without it `toFQDNs` would never match.
    """
    rules: list[dict[str, Any]] = [
        {
            "toEndpoints": [_cilium_selector(dns.pod_labels, dns.namespace)],
            "toPorts": [
                {
                    "ports": [{"port": str(dns.port), "protocol": "ANY"}],
                    "rules": {"dns": [{"matchPattern": "*"}]},
                }
            ],
        }
    ]
    notes: list[str] = []
    for i, entry in enumerate(spec.egress):
        if i in excluded:
            notes.append(f"spec.egress[{i}] left out: it breaks a region or host rule")
            continue
        to_ports = [{"ports": [{"port": str(p.port), "protocol": p.protocol} for p in entry.ports]}]
        if entry.host is not None:
            fqdn = (
                {"matchPattern": entry.host}
                if entry.host.startswith("*.")
                else {"matchName": entry.host}
            )
            rules.append({"toFQDNs": [fqdn], "toPorts": to_ports})
        elif entry.cidr is not None:
            block: dict[str, Any] = {"cidr": entry.cidr}
            if entry.except_:
                block["except"] = list(entry.except_)
            rules.append({"toCIDRSet": [block], "toPorts": to_ports})
        elif entry.service is not None and entry.service.name is not None:
            namespace = entry.service.namespace or workload.namespace
            selector = service_selectors.get((namespace, entry.service.name))
            if not selector:
                notes.append(
                    f"spec.egress[{i}]: Service {namespace}/{entry.service.name} not found or "
                    "has no selector; allowed once it exists"
                )
                continue
            rules.append(
                {"toEndpoints": [_cilium_selector(selector, namespace)], "toPorts": to_ports}
            )
        elif entry.service is not None:
            rules.append(
                {
                    "toEndpoints": [_cilium_peer(entry.service, workload.namespace)],
                    "toPorts": to_ports,
                }
            )
    manifest = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": _metadata(workload),
        "spec": {
            "endpointSelector": spec.selector.to_kubernetes(),
            "egress": rules,
        },
    }
    return RenderedPolicy(manifest, tuple(notes))
