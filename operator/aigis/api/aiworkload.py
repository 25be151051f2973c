"""The AIWorkload resource: one AI workload's declaration of purpose, models, egress and guardrails.

These models are the one definition of the resource: the CRD in `crds/` is generated from them
(`aigis.crdgen`), the operator and webhook read objects through them, and `aigis scan` validates
manifests with them. Checks a schema cannot express (host syntax, CIDR arithmetic, RE2
compilation, ...) live in `aigis.api.validation`, not here.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainValidator, WithJsonSchema

from aigis.api.common import (
    MAX_LABEL,
    MAX_NAME,
    ApiModel,
    Condition,
    CrossFieldRule,
    KubernetesObject,
    LabelSelector,
    Name,
    PodSelector,
    ResourceKind,
    ShortName,
    Text,
    defaulted,
)

AIWORKLOAD = ResourceKind(kind="AIWorkload", plural="aiworkloads", short_names=("aiw",))

Enforcement = Literal["Enforce", "Audit"]
Provider = Literal[
    "openai",
    "azure-openai",
    "anthropic",
    "bedrock",
    "vertex",
    "gemini",
    "mistral",
    "cohere",
    "self-hosted",
]
Protocol = Literal["TCP", "UDP", "SCTP"]
GuardAction = Literal["Block", "Redact", "Log"]
PiiEntity = Literal["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS"]
PII_ENTITIES: tuple[PiiEntity, ...] = (
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "IP_ADDRESS",
)
PromptLogging = Literal["None", "Hash", "Redacted"]
FailureMode = Literal["FailClosed", "FailOpen"]
AppliesTo = Literal["Request", "Response", "Both"]
StorageType = Literal["Secrets", "S3"]
ObjectLockMode = Literal["Governance", "Compliance"]

# The Kubernetes quantity grammar (resource.Quantity), as controller-gen writes it into CRDs.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _quantity(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and len(value) <= 64 and _QUANTITY.match(value):
        return value
    raise ValueError("must be a Kubernetes quantity such as 500m, 256Mi or 2")


Quantity = Annotated[
    int | str,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity: an integer or a string such as `500m` or `256Mi`."""


def _iso_date(value: object) -> object:
    # Strict pydantic takes only `date` objects; manifests read as JSON carry strings.
    if not isinstance(value, str):
        return value
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be a calendar date written YYYY-MM-DD, e.g. 2026-03-31")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class ModelRef(ApiModel):
    """A model the workload may call: the gateway allows no other."""

    provider: Provider
    """Who serves the model; `self-hosted` for a model served inside the cluster."""
    name: Name
    """The model's name as the provider's API knows it, e.g. `gpt-4o` or `claude-sonnet-4-5`."""
    image: Annotated[str, Field(max_length=512)] | None = None
    """Self-hosted only: the container image that serves the model."""
    source: Annotated[str, Field(max_length=512)] | None = None
    """Self-hosted only: where the weights come from, e.g. `hf://mistralai/Mistral-7B-v0.3`."""
    digest: Annotated[str, Field(max_length=71)] | None = None
    """Self-hosted only: SHA-256 of the model weights, `sha256:` and 64 hex digits."""

    cross_field_rules = (
        CrossFieldRule["ModelRef"](
            cel="self.provider != 'self-hosted' || has(self.image)",
            message="a self-hosted model needs image: the container image that serves it",
            holds=lambda m: m.provider != "self-hosted" or m.image is not None,
        ),
        CrossFieldRule["ModelRef"](
            cel="self.provider == 'self-hosted'"
            " || (!has(self.image) && !has(self.source) && !has(self.digest))",
            message="image, source and digest describe a self-hosted model; "
            "remove them or set provider: self-hosted",
            holds=lambda m: (
                m.provider == "self-hosted"
                or (m.image is None and m.source is None and m.digest is None)
            ),
        ),
    )


class EgressPort(ApiModel):
    """A destination port."""

    port: int = Field(ge=1, le=65535)
    """The port number."""
    protocol: Protocol = "TCP"
    """The transport protocol."""


class ServiceTarget(ApiModel):
    """In-cluster destination: a Service by name, or pods by label."""

    namespace: ShortName | None = None
    """Namespace of the Service named by `name`; defaults to the AIWorkload's namespace."""
    name: ShortName | None = None
    """Name of the Service."""
    namespace_selector: LabelSelector | None = None
    """Namespaces whose pods are allowed (instead of `namespace` and `name`)."""
    pod_selector: LabelSelector | None = None
    """Pods that are allowed (instead of `namespace` and `name`)."""

    cross_field_rules = (
        CrossFieldRule["ServiceTarget"](
            # `namespace` is a CEL keyword: the API server exposes it as `__namespace__`.
            cel="has(self.name) ? (!has(self.namespaceSelector) && !has(self.podSelector))"
            " : (!has(self.__namespace__)"
            " && (has(self.namespaceSelector) || has(self.podSelector)))",
            message="service is either {namespace, name} of a Service "
            "or {namespaceSelector, podSelector} of pods; do not mix the two",
            holds=lambda s: (
                s.namespace_selector is None and s.pod_selector is None
                if s.name is not None
                else s.namespace is None
                and (s.namespace_selector is not None or s.pod_selector is not None)
            ),
        ),
    )


class EgressRule(ApiModel):
    """One allowed destination: exactly one of host, cidr or service."""

    host: Annotated[str, Field(max_length=MAX_NAME)] | None = None
    """A fully qualified domain name, exact (`api.openai.com`) or one-level wildcard
    (`*.example.com`)."""
    cidr: Annotated[str, Field(max_length=64)] | None = None
    """An IPv4 or IPv6 address block, e.g. `10.20.0.0/16`."""
    except_: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, alias="except", max_length=32
    )
    """Address blocks inside `cidr` that stay forbidden."""
    service: ServiceTarget | None = None
    """An in-cluster destination."""
    ports: list[EgressPort] = Field(default=[EgressPort(port=443)], min_length=1, max_length=32)
    """Allowed destination ports; HTTPS (443/TCP) when omitted."""
    region: Annotated[str, Field(max_length=32)] | None = None
    """Data region of the destination (see dataRegions), for destinations aigis's endpoint
    catalogue cannot place (an Azure resource, your own hosts, a cidr or service). Where the
    catalogue knows the host, its region wins and a different one here is a finding."""

    cross_field_rules = (
        CrossFieldRule["EgressRule"](
            cel="[has(self.host), has(self.cidr), has(self.service)].filter(x, x).size() == 1",
            message="an egress entry needs exactly one of host, cidr or service; "
            "split it into one entry per destination",
            holds=lambda e: [e.host, e.cidr, e.service].count(None) == 2,
        ),
        CrossFieldRule["EgressRule"](
            cel="!has(self.except) || has(self.cidr)",
            message="except narrows a cidr; remove it or add cidr",
            holds=lambda e: e.except_ is None or e.cidr is not None,
        ),
    )


MAX_GATEWAY_WORKERS = 8
"""Port names are at most 15 characters: `aigis-metrics-7` is the last worker's."""

CLASSIFIER_MOUNT_ROOT = "/models/"
"""Where classifier volumes are mounted in the gateway container: a directory its image leaves
empty, so a mounted volume can never shadow the gateway's own code, configuration or keys."""


class ClassifierVolume(ApiModel):
    """Where the injected gateway gets the classifier's files: exactly one source."""

    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """An OCI image or artifact holding the files, mounted as an image volume (clusters with
    image volumes, Kubernetes' ImageVolume feature); pin it by digest."""
    persistent_volume_claim: Name | None = None
    """A PersistentVolumeClaim in the workload's namespace holding the files."""

    cross_field_rules = (
        CrossFieldRule["ClassifierVolume"](
            cel="[has(self.image), has(self.persistentVolumeClaim)].filter(x, x).size() == 1",
            message="a classifier volume needs exactly one of image or persistentVolumeClaim",
            holds=lambda v: [v.image, v.persistent_volume_claim].count(None) == 1,
        ),
    )


class InjectionModelRef(ApiModel):
    """A transformer prompt-injection classifier the workload mounts; never downloaded."""

    path: Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^/")]
    """Absolute path of a directory holding `model.onnx` and a Hugging Face `tokenizer.json`.
    In the gateway sidecar it is where `volume` is mounted, under `/models/`; `aigis guard`
    reads it from the local disk."""
    volume: ClassifierVolume | None = None
    """The volume the injection mounts read-only at `path` in the gateway container (the
    gateway's image holds no model). Required when the gateway is injected."""
    timeout_ms: int = Field(200, ge=1, le=10000)
    """Longest wait for the model on one prompt; past it, `failureMode` applies."""
    max_tokens: int = Field(512, ge=8, le=8192)
    """Tokens per window; longer prompts are scored in half-overlapping windows."""


class PromptInjectionGuard(ApiModel):
    """Detection of prompt injection and jailbreak attempts in requests and tool results."""

    enabled: bool = True
    """Whether the guard runs."""
    action: Literal["Block", "Log"] = "Block"
    """What to do with a request scored at or above `threshold`."""
    threshold: float = Field(0.5, ge=0, le=1)
    """Score from 0 (certainly benign) to 1 (certainly an injection) at which `action` applies."""
    classifier: InjectionModelRef | None = None
    """An optional transformer classifier, consulted besides the built-in detector (the higher
    score counts); none when omitted. The gateway loads it once per configuration and scores on
    a worker thread; a model that cannot be loaded keeps the gateway from starting."""

    @property
    def active_classifier(self) -> InjectionModelRef | None:
        """The classifier in force: none while the guard is off, whatever `classifier` says."""
        return self.classifier if self.enabled else None


class PiiPattern(ApiModel):
    """A kind of personal data the workload defines itself, e.g. its customer numbers."""

    name: ShortName
    """Names what was found in findings and redaction tokens: upper case, digits and `_`,
    e.g. `CUSTOMER_ID` (redacted as `<CUSTOMER_ID_1>`)."""
    pattern: Annotated[str, Field(min_length=1, max_length=4096)]
    """A regular expression in RE2 syntax (linear-time: no backreferences or lookaround)."""


class PiiGuard(ApiModel):
    """Detection of personal data in requests and responses."""

    enabled: bool = True
    """Whether the guard runs."""
    entities: list[PiiEntity] = Field(
        default=list(PII_ENTITIES),
        min_length=1,
        max_length=len(PII_ENTITIES),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """Kinds of personal data to look for."""
    custom_patterns: list[PiiPattern] | None = Field(None, max_length=32)
    """Further kinds of personal data, each a named RE2 pattern, found with the same action;
    none when omitted."""
    action: GuardAction = "Redact"
    """What to do when personal data is found."""


class SecretsGuard(ApiModel):
    """Detection of credentials (API keys, tokens, private keys) in requests and responses."""

    enabled: bool = True
    """Whether the guard runs."""
    action: GuardAction = "Block"
    """What to do when a secret is found."""


class DenyPattern(ApiModel):
    """A workload-specific pattern that must not pass the gateway."""

    name: ShortName
    """Identifies the pattern in audit records and metrics (a DNS label)."""
    pattern: Annotated[str, Field(min_length=1, max_length=4096)]
    """A regular expression in RE2 syntax (linear-time: no backreferences or lookaround)."""
    action: GuardAction = "Block"
    """What to do on a match."""
    applies_to: AppliesTo = "Both"
    """Which direction is scanned."""


class Limits(ApiModel):
    """Size and rate limits the gateway enforces; each is off when omitted."""

    max_request_bytes: int | None = Field(None, ge=1)
    """Largest request body accepted, in bytes."""
    max_tokens: int | None = Field(None, ge=1)
    """Largest `max_tokens` (or equivalent) a request may ask for."""
    requests_per_minute: int | None = Field(None, ge=1)
    """Requests per minute across the workload's pods."""


class Guardrails(ApiModel):
    """What the gateway checks in prompts and answers (streaming and tool calls included)."""

    prompt_injection: PromptInjectionGuard = defaulted(PromptInjectionGuard)
    """Prompt-injection detection."""
    pii: PiiGuard = defaulted(PiiGuard)
    """Personal-data detection."""
    secrets: SecretsGuard = defaulted(SecretsGuard)
    """Credential detection."""
    deny_patterns: list[DenyPattern] = Field(default_factory=list, max_length=64)
    """Workload-specific patterns."""
    limits: Limits | None = None
    """Size and rate limits."""
    prompt_logging: PromptLogging = "Hash"
    """What the audit log keeps of prompts: nothing, a hash, or the redacted text."""
    failure_mode: FailureMode = "FailClosed"
    """What the gateway does when a guardrail itself fails: refuse the request, or let it pass."""


class ResourceRequirements(ApiModel):
    """Compute resources of the gateway container, as in a Kubernetes container spec."""

    requests: dict[str, Quantity] | None = Field(None, max_length=8)
    """Minimum resources, e.g. `cpu: 50m`."""
    limits: dict[str, Quantity] | None = Field(None, max_length=8)
    """Maximum resources, e.g. `memory: 256Mi`."""


class SecretKeyRef(ApiModel):
    """One key of a Secret in the AIWorkload's namespace."""

    name: Name
    """Name of the Secret."""
    key: Name
    """Key within the Secret."""


class ProviderKey(ApiModel):
    """An API key the gateway holds for one provider, so the app never sees it."""

    provider: Provider
    """The provider the key is for."""
    secret_ref: SecretKeyRef
    """Where the key is stored."""


class ProviderUpstream(ApiModel):
    """Where the gateway sends one provider's requests, when the egress list cannot say."""

    provider: Provider
    """The provider, as named in spec.models."""
    base_url: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^https?://")]
    """The API's base URL including its version prefix, e.g.
    `https://myres.openai.azure.com/openai/v1` or `http://vllm.ml.svc:8000/v1`. Its host must be
    declared in spec.egress (a `service` entry for an in-cluster `<name>.<namespace>.svc` URL);
    plain `http://` is accepted only for in-cluster Services."""


class Gateway(ApiModel):
    """The AI gateway sidecar through which the workload reaches its models."""

    inject: bool = True
    """Whether aigis injects the gateway into the workload's pods."""
    resources: ResourceRequirements | None = None
    """Compute resources of the gateway container."""
    workers: int = Field(1, ge=1, le=MAX_GATEWAY_WORKERS)
    """Gateway processes in the sidecar, sharing its port (SO_REUSEPORT), for pods that send more
    than one core's worth of requests; give the container as many CPUs. Each keeps its own audit
    chain; worker i serves metrics on the metrics port plus i (ports `aigis-metrics`,
    `aigis-metrics-1`, ...)."""
    provider_keys: list[ProviderKey] = Field(default_factory=list, max_length=16)
    """Provider API keys the gateway holds."""
    upstreams: list[ProviderUpstream] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["provider"],
        },
    )
    """Base URLs per provider. Usually not needed: a provider's upstream is the one host of that
    provider declared in spec.egress (`eu.api.openai.com` gives `https://eu.api.openai.com/v1`),
    else its default host. Needed for self-hosted models, and to choose among several declared
    hosts of one provider."""


class SecretReference(ApiModel):
    """A Secret in the AIWorkload's namespace."""

    name: Name
    """Name of the Secret."""


class ObjectLock(ApiModel):
    """S3 Object Lock on each stored bundle, until the snapshot expires (retentionDays)."""

    mode: ObjectLockMode = "Compliance"
    """Compliance: nobody, not even the bucket's owner, can delete the bundle or shorten its
    retention. Governance: accounts with s3:BypassGovernanceRetention can."""


class S3EvidenceStore(ApiModel):
    """An S3-compatible bucket for evidence bundles: one object per bundle,
    `<prefix><namespace>/<snapshot>/bundle.tar.gz`."""

    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    """The bucket's name. With objectLock, the bucket must have been created with Object Lock
    enabled."""
    endpoint: Annotated[str, Field(max_length=512)] | None = None
    """The S3 API's URL, e.g. `https://minio.storage.svc:9000`; AWS S3 when omitted."""
    region: Annotated[str, Field(max_length=64)] | None = None
    """The bucket's region; `us-east-1` when omitted."""
    credentials_secret: SecretReference
    """The Secret (in the AIWorkload's namespace) with the keys AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY that may write to the bucket."""
    object_lock: ObjectLock | None = None
    """Lock each bundle against deletion until the snapshot expires. Omitted: no lock; the
    bundle is deleted when the snapshot expires, and anyone with the keys can delete it
    earlier."""
    prefix: Annotated[str, Field(max_length=256)] | None = None
    """Prepended to every object key, e.g. `cluster-a/`."""


class ForensicsStorage(ApiModel):
    """Where the bytes of evidence bundles are kept."""

    type: StorageType = "Secrets"
    """Secrets: chunked into Secrets next to each ForensicSnapshot. S3: one object per bundle
    in the bucket that s3 describes."""
    s3: S3EvidenceStore | None = None
    """The bucket; required with type S3, and only then."""

    cross_field_rules = (
        CrossFieldRule["ForensicsStorage"](
            cel="self.type != 'S3' || has(self.s3)",
            message="type S3 needs s3: {bucket, credentialsSecret: {name}}",
            holds=lambda s: s.type != "S3" or s.s3 is not None,
        ),
        CrossFieldRule["ForensicsStorage"](
            cel="self.type == 'S3' || !has(self.s3)",
            message="s3 describes the S3 backend; set type: S3 or remove s3",
            holds=lambda s: s.type == "S3" or s.s3 is None,
        ),
    )


class Forensics(ApiModel):
    """Evidence capture when a pod of the workload terminates."""

    capture_on_termination: bool = True
    """Whether a terminating pod's evidence bundle is captured before it is gone."""
    logs_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """Cap on the logs kept per container, in bytes."""
    retention_days: int = Field(30, ge=1, le=3650)
    """How long evidence bundles are kept."""
    checkpoint: bool = False
    """Also take a kubelet container checkpoint. Opt-in: a checkpoint holds all process memory,
    secrets included."""
    storage: ForensicsStorage | None = None
    """Where the evidence bundles' bytes are kept: {type: Secrets} when omitted, or
    {type: S3, s3: {...}} for a bucket with Object Lock."""


class Assurance(ApiModel):
    """Evidence that the workload has been tested adversarially."""

    last_red_team: IsoDate | None = None
    """Date of the last red-team exercise (YYYY-MM-DD)."""
    required_freshness_days: int | None = Field(None, ge=1, le=3650)
    """Maximum age of the last red-team exercise, in days."""


class AIWorkloadSpec(ApiModel):
    """The declaration of one AI workload: what it is for, what it may use, and how it is
    guarded."""

    selector: PodSelector
    """The pods this declaration covers."""
    owner: Name
    """The team or person accountable for the workload."""
    purpose: Annotated[Text, Field(min_length=1)]
    """What the workload is for, in a sentence or two."""
    enforcement: Enforcement = "Enforce"
    """Enforce refuses what breaks the declaration; Audit allows it, warns and records it."""
    models: list[ModelRef] = Field(default_factory=list, max_length=32)
    """The models the workload may call."""
    egress: list[EgressRule] = Field(default_factory=list, max_length=128)
    """Where the workload may send traffic; everything else is denied."""
    data_regions: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=16, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Jurisdictions the workload's data may be processed in, e.g. `eu`."""
    guardrails: Guardrails = defaulted(Guardrails)
    """What the gateway checks in prompts and answers."""
    gateway: Gateway = defaulted(Gateway)
    """The gateway sidecar."""
    forensics: Forensics = defaulted(Forensics)
    """Evidence capture."""
    assurance: Assurance | None = None
    """Red-team attestation."""
    service_account_token: bool = False
    """The pods may mount a ServiceAccount token to call the Kubernetes API. Off by default: a
    workload steered by prompt injection could otherwise act with its ServiceAccount's rights."""


class Violation(ApiModel):
    """One way the workload breaks its declaration or the cluster's policy."""

    rule: Annotated[str, Field(max_length=MAX_LABEL)]
    """The rule broken, e.g. InvalidSpec."""
    path: Annotated[str, Field(max_length=256)]
    """The field at fault, e.g. `spec.egress[2].host`."""
    message: Text
    """What is wrong and how to fix it."""


class AuditFindingSummary(ApiModel):
    """One finding of the background audit about an object the workload covers."""

    result: Literal["deny", "warn"]
    """deny: admission would refuse the object today; warn: it would admit it with a warning."""
    rule: Annotated[str, Field(max_length=128)]
    """The rule id, e.g. `secrets/provider-key-in-app` (`aigis rules`)."""
    object: Annotated[str, Field(max_length=MAX_NAME + 64)]
    """The object, as `Kind/name`."""
    path: Annotated[str, Field(max_length=256)]
    """The field at fault in that object."""
    message: Text
    """What is wrong."""


class AuditRuleCount(ApiModel):
    """How many findings of one rule the audit made."""

    rule: Annotated[str, Field(max_length=128)]
    count: int = Field(ge=0)


class AuditSummary(ApiModel):
    """What the operator's background audit found about the objects this workload covers: the
    objects that run pods today, judged by the admission engine (capped; the namespace's
    PolicyReport lists more)."""

    last_change_time: Annotated[
        str, Field(max_length=64, json_schema_extra={"format": "date-time"})
    ]
    """When an audit pass last found something different (RFC 3339)."""
    objects: int = Field(ge=0)
    """Top-level objects (Deployments, Jobs, ...) whose pod templates the workload covers."""
    denied: int = Field(ge=0)
    """Of those, how many admission would refuse today."""
    warned: int = Field(ge=0)
    """How many it would admit with warnings."""
    allowed: int = Field(ge=0)
    """How many it would admit as they are."""
    pods: int = Field(ge=0)
    """Their running pods."""
    rules: list[AuditRuleCount] = Field(default_factory=list, max_length=64)
    """Findings by rule."""
    findings: list[AuditFindingSummary] = Field(default_factory=list, max_length=20)
    """The first findings, refusals first."""
    omitted: int = Field(0, ge=0)
    """Findings not listed in `findings`."""


class AIWorkloadStatus(ApiModel):
    """What the operator found and did. Written by aigis only; every list is capped."""

    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation last reconciled."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    """Ready, Invalid, Compliant, NetworkPolicyApplied, ..."""
    violations: list[Violation] = Field(default_factory=list, max_length=50)
    """The first violations found (at most 50)."""
    pods_matched: int | None = Field(None, ge=0)
    """Pods the selector covers."""
    pods_injected: int | None = Field(None, ge=0)
    """Covered pods that run the gateway."""
    network_policies: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=16
    )
    """Names of the NetworkPolicies aigis wrote for this workload."""
    gateway_config_map: Annotated[str, Field(max_length=MAX_NAME)] | None = None
    """Name of the ConfigMap holding the gateway's configuration (mounted into injected pods)."""
    last_snapshot: Annotated[str, Field(max_length=MAX_NAME)] | None = None
    """Name of the most recent ForensicSnapshot."""
    audit: AuditSummary | None = None
    """The background audit of the objects the workload covers (written by the audit, not by
    the reconcile)."""


class AIWorkload(KubernetesObject):
    """Declares an AI workload so aigis can enforce its egress, gateway, admission and
    forensics."""

    resource = AIWORKLOAD

    api_version: Literal["aigis.dev/v1alpha1"] = "aigis.dev/v1alpha1"
    """The API version."""
    kind: Literal["AIWorkload"] = "AIWorkload"
    """The resource kind."""
    spec: AIWorkloadSpec
    """The declaration."""
    status: AIWorkloadStatus | None = None
    """Written by aigis."""
