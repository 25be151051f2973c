"""Putting a workload's generated objects in force, and keeping them there.

The objects are its egress policies (NetworkPolicy, CiliumNetworkPolicy), its gateway's
ConfigMap, and the Secret holding its gateways' audit key (created once, never rewritten:
`aigis.controller.auditkey`). The shell around `aigis.egress` and `aigis.controller.gateway`: it
resolves declared hosts (through the injectable resolver), looks up declared Services, renders
with the pure functions, applies with server-side apply, and remembers what it applied so that an
edit or deletion by someone else is undone (drift repair). Owner references on every object let
the garbage collector remove them with their AIWorkload; aigis itself never has to.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aigis import metrics
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.controller.auditkey import (
    AUDIT_KEY_BYTES,
    holds_audit_key,
    owned_by,
    owner_reference,
    render_audit_key_secret,
)
from aigis.controller.gateway import render_gateway_config_map
from aigis.controller.status import APPLIED, AUDIT_MODE, EgressOutcome
from aigis.egress.compliance import ComplianceReport
from aigis.egress.networkpolicy import (
    ClusterDns,
    RenderedPolicy,
    WorkloadRef,
    policy_name,
    render_cilium_network_policy,
    render_network_policy,
)
from aigis.egress.resolver import AddressBook, Resolver, StaticResolver, SystemResolver
from aigis.gateway.config import gateway_config_map_name
from aigis.gateway.identity import audit_key_secret_name
from aigis.kube import MERGE_CONTENT_TYPE, KubeClient, KubeError, namespaced_path, object_path
from aigis.settings import OperatorSettings

NETWORK_POLICY = "NetworkPolicy"
CILIUM_POLICY = "CiliumNetworkPolicy"
CONFIG_MAP = "ConfigMap"
CILIUM_CRD = "ciliumnetworkpolicies.cilium.io"
CILIUM_CHECK_SECONDS = 60.0

log = logging.getLogger(__name__)
API_VERSIONS = {
    NETWORK_POLICY: "networking.k8s.io/v1",
    CILIUM_POLICY: "cilium.io/v2",
    CONFIG_MAP: "v1",
}


@dataclass
class _Applied:
    desired: dict[str, Any]
    """The manifest aigis applied."""
    content: Any
    """The spec (or a ConfigMap's data) as the API server stored it, with its defaults, to
    compare events against."""


def _content(body: Mapping[str, Any]) -> Any:
    return body.get("data") if body.get("kind") == CONFIG_MAP else body.get("spec")


def _key(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = manifest["metadata"]
    return (manifest["kind"], meta["namespace"], meta["name"])


def _stub(kind: str, namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSIONS[kind],
        "kind": kind,
        "metadata": {"namespace": namespace, "name": name},
    }


def make_resolver(settings: OperatorSettings) -> Resolver:
    """The static hosts file when one is configured, else the system resolver."""
    if settings.static_hosts is not None:
        return StaticResolver(settings.static_hosts)
    return SystemResolver()


class WorkloadEnforcer:
    """Applies and guards the generated objects of every workload this operator reconciles."""

    def __init__(
        self,
        kube: KubeClient,
        settings: OperatorSettings,
        *,
        clock: Callable[[], float],
        resolver: Resolver | None = None,
    ) -> None:
        self.kube = kube
        self._clock = clock
        self._mode = settings.network_policy_mode
        self._dns = ClusterDns(
            namespace=settings.dns_namespace, pod_labels=dict(settings.dns_labels)
        )
        self._addresses = AddressBook(resolver or make_resolver(settings), clock=clock)
        self._applied: dict[tuple[str, str, str], _Applied] = {}
        self._cilium_seen: tuple[bool, float] | None = None
        self._namespaces = settings.namespaces
        self._audit_keys: set[tuple[str, str]] = set()
        """(namespace, Secret name) of audit keys seen in place since the last forced pass."""

    async def _kinds(self) -> tuple[str, ...]:
        if self._mode == "NetworkPolicy":
            return (NETWORK_POLICY,)
        if self._mode == "Cilium":
            return (CILIUM_POLICY,)
        if self._mode == "Both":
            return (NETWORK_POLICY, CILIUM_POLICY)
        now = self._clock()
        if self._cilium_seen is None or now - self._cilium_seen[1] > CILIUM_CHECK_SECONDS:
            installed = await self.kube.crd_installed(CILIUM_CRD)
            self._cilium_seen = (installed, now)
        return (NETWORK_POLICY, CILIUM_POLICY) if self._cilium_seen[0] else (NETWORK_POLICY,)

    async def enforce(
        self,
        ref: WorkloadRef,
        spec: AIWorkloadSpec,
        compliance: ComplianceReport,
        *,
        force: bool = False,
    ) -> EgressOutcome:
        """Make the workload's policies match its spec; `force` re-applies unchanged ones too."""
        kinds = await self._kinds()
        try:
            if compliance.enforcement != "Enforce":
                await self._withdraw(ref, (NETWORK_POLICY, CILIUM_POLICY))
                return EgressOutcome(
                    AUDIT_MODE,
                    "Audit mode: egress is recorded, not enforced, so aigis writes no policy",
                )
            rendered, notes = await self._render(ref, spec, compliance, kinds)
            for policy in rendered:
                await self._apply(policy.manifest, force=force)
            await self._withdraw(
                ref, tuple(k for k in (NETWORK_POLICY, CILIUM_POLICY) if k not in kinds)
            )
        except KubeError as exc:
            hint = ""
            if exc.status == 404 and CILIUM_POLICY in kinds:
                hint = "; is Cilium installed? (--network-policy-mode NetworkPolicy avoids it)"
            return EgressOutcome("ApplyFailed", f"could not apply the egress policy: {exc}{hint}")
        names = tuple(dict.fromkeys(p.manifest["metadata"]["name"] for p in rendered))
        applied = ", ".join(
            f"{p.manifest['kind']} {p.manifest['metadata']['name']}" for p in rendered
        )
        message = "; ".join([f"applied {applied}", *notes])
        return EgressOutcome(APPLIED, message, names)

    async def _render(
        self,
        ref: WorkloadRef,
        spec: AIWorkloadSpec,
        compliance: ComplianceReport,
        kinds: tuple[str, ...],
    ) -> tuple[list[RenderedPolicy], list[str]]:
        excluded = compliance.blocked_entries
        hosts = [e.host for i, e in enumerate(spec.egress) if e.host and i not in excluded]
        book = await self._addresses.lookup(hosts) if NETWORK_POLICY in kinds else {}
        notes = []
        for host, entry in book.items():
            if entry.last_error:
                metrics.RESOLVE_FAILURES.inc()
                kept = ", ".join(entry.addresses) or "none"
                notes.append(
                    f"resolving {host} failed ({entry.last_error}); "
                    f"kept the last good addresses ({kept})"
                )
        services = sorted(
            {
                (e.service.namespace or ref.namespace, e.service.name)
                for e in spec.egress
                if e.service is not None and e.service.name is not None
            }
        )
        found = await asyncio.gather(*(self.kube.service_selector(ns, n) for ns, n in services))
        selectors = dict(zip(services, found, strict=True))
        rendered = []
        if NETWORK_POLICY in kinds:
            rendered.append(
                render_network_policy(
                    ref,
                    spec,
                    addresses={h: e.addresses for h, e in book.items()},
                    service_selectors=selectors,
                    excluded=excluded,
                    dns=self._dns,
                )
            )
        if CILIUM_POLICY in kinds:
            rendered.append(
                render_cilium_network_policy(
                    ref, spec, service_selectors=selectors, excluded=excluded, dns=self._dns
                )
            )
        for policy in rendered:
            notes.extend(n for n in policy.notes if n not in notes)
        return rendered, notes

    async def _apply(self, manifest: dict[str, Any], *, force: bool) -> None:
        key = _key(manifest)
        known = self._applied.get(key)
        if known is not None and known.desired == manifest and not force:
            return
        stored = await self.kube.apply(object_path(manifest), manifest)
        self._applied[key] = _Applied(manifest, _content(stored or {}))
        self._publish()

    async def _withdraw(self, ref: WorkloadRef, kinds: tuple[str, ...]) -> None:
        """Delete the workload's policies of these kinds, if aigis applied any."""
        name = policy_name(ref.name)
        for kind in kinds:
            if self._applied.pop((kind, ref.namespace, name), None) is not None:
                await self.kube.delete(_stub(kind, ref.namespace, name))
        self._publish()

    async def configure_gateway(
        self,
        ref: WorkloadRef,
        spec: AIWorkloadSpec,
        *,
        force: bool = False,
        trust_declared_regions: bool = True,
    ) -> str | None:
        """Apply (or, with the gateway off, delete) the gateway's ConfigMap; return its name.

        `trust_declared_regions` is the governing policies' answer (`ComplianceReport`): the
        gateway cannot see the policies, so their effect on regions is rendered into its config.
        """
        manifest = render_gateway_config_map(
            ref, spec, trust_declared_regions=trust_declared_regions
        )
        key = _key(manifest)
        if not spec.gateway.inject:
            if self._applied.pop(key, None) is not None:
                await self.kube.delete(manifest)
            return None
        await self._apply(manifest, force=force)
        await self.ensure_audit_key(ref, force=force)
        return str(manifest["metadata"]["name"])

    async def ensure_audit_key(self, ref: WorkloadRef, *, force: bool = False) -> bool:
        """Create the workload's audit-key Secret if it is missing; True when one was created.

        An existing Secret is never rewritten (its key signs lines already written). One without
        a usable key (made by hand) is replaced, since no gateway could have chained with it.
        """
        name = audit_key_secret_name(ref.name)
        known = (ref.namespace, name)
        if known in self._audit_keys and not force:
            return False
        path = namespaced_path("/api/v1", ref.namespace, "secrets")
        secret_path = namespaced_path("/api/v1", ref.namespace, "secrets", name)
        existing = await self.kube.request("GET", secret_path)
        if holds_audit_key(existing):
            assert existing is not None
            if not owned_by(existing, ref):
                # A deleted AIWorkload's of the same name, about to be garbage-collected:
                # adopt it before that happens (see aigis.controller.auditkey).
                try:
                    await self.kube.request(
                        "PATCH",
                        secret_path,
                        body={"metadata": {"ownerReferences": [owner_reference(ref)]}},
                        content_type=MERGE_CONTENT_TYPE,
                    )
                except KubeError as exc:
                    if exc.status != 404:
                        raise
                    return await self.ensure_audit_key(ref, force=True)  # collected first
                log.info("audit-key Secret %s/%s adopted by the new AIWorkload", *known)
            self._audit_keys.add(known)
            return False
        if existing is not None:
            log.warning("audit-key Secret %s/%s holds no usable key; replacing it", *known)
            await self.kube.request("DELETE", secret_path)
        manifest = render_audit_key_secret(ref, secrets.token_bytes(AUDIT_KEY_BYTES))
        try:
            await self.kube.request("POST", path, body=manifest)
        except KubeError as exc:
            if exc.status != 409:  # another replica created it first: that key stands
                raise
        self._audit_keys.add(known)
        return existing is None

    def forget(self, namespace: str, workload_name: str) -> None:
        """The workload is gone; its objects go through garbage collection, not repair."""
        for kind, name in (
            (NETWORK_POLICY, policy_name(workload_name)),
            (CILIUM_POLICY, policy_name(workload_name)),
            (CONFIG_MAP, gateway_config_map_name(workload_name)),
        ):
            self._applied.pop((kind, namespace, name), None)
        self._audit_keys.discard((namespace, audit_key_secret_name(workload_name)))
        self._publish()

    async def repair(self, event_type: str, body: Mapping[str, Any]) -> bool:
        """Re-apply a generated policy that was deleted or changed by someone else."""
        meta = body.get("metadata", {})
        key = (str(body.get("kind")), str(meta.get("namespace")), str(meta.get("name")))
        known = self._applied.get(key)
        if known is None:
            return False
        intact = (
            event_type != "DELETED"
            and _content(body) == known.content
            and all(
                meta.get("labels", {}).get(k) == v
                for k, v in known.desired["metadata"]["labels"].items()
            )
        )
        if intact:
            return False
        owner = known.desired["metadata"]["ownerReferences"][0]
        if not await self._owner_alive(key[1], owner["name"], owner["uid"]):
            self._applied.pop(key, None)
            self._publish()
            return False
        try:
            await self._apply(known.desired, force=True)
        except KubeError as exc:
            # Typically the namespace is being deleted; the next reconcile tries again if not.
            log.warning("could not restore %s %s/%s: %s", *key, exc)
            return False
        metrics.DRIFT_REPAIRS.labels(kind=key[0]).inc()
        return True

    async def _owner_alive(self, namespace: str, name: str, uid: str) -> bool:
        workload = await self.kube.get_aiworkload(namespace, name)
        meta = (workload or {}).get("metadata", {})
        return meta.get("uid") == uid and "deletionTimestamp" not in meta

    async def touch_workloads(self, annotation: str, value: str) -> None:
        """Annotate every AIWorkload this operator watches so kopf reconciles each again now.

        An operator limited to some namespaces (`--namespace`) touches only those: another
        operator, or nobody, owns the rest.
        """
        workloads = [
            w
            for w in await self.kube.list_aiworkloads()
            if self.watches(str(w.get("metadata", {}).get("namespace", "")))
        ]
        limit = asyncio.Semaphore(16)

        async def touch(meta: Mapping[str, Any]) -> None:
            async with limit:
                try:
                    await self.kube.annotate_aiworkload(
                        meta["namespace"], meta["name"], {annotation: value}
                    )
                except KubeError as exc:
                    if exc.status != 404:
                        raise

        await asyncio.gather(*(touch(w["metadata"]) for w in workloads))

    def watches(self, namespace: str) -> bool:
        """Whether `namespace` is one this operator reconciles (all, when none is named)."""
        return not self._namespaces or any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self._namespaces
        )

    def _publish(self) -> None:
        for kind in (NETWORK_POLICY, CILIUM_POLICY):
            count = sum(1 for k in self._applied if k[0] == kind)
            metrics.MANAGED_POLICIES.labels(kind=kind).set(count)
