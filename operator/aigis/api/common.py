"""Building blocks shared by every aigis resource.

Owns how a pydantic model maps onto Kubernetes conventions: camelCase field names, `null` meaning
"absent", unknown fields refused, and cross-field rules that both pydantic and the API server
(as CEL) enforce. Also the label selector, the status condition and a resource's identity.

The API is the bottom layer: nothing here may import the operator, the webhook or the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.alias_generators import to_camel

GROUP = "aigis.dev"
VERSION = "v1alpha1"

# Upper bounds on every string and list. The API server's CEL cost estimator multiplies by them,
# and status objects must stay small, so nothing is unbounded.
MAX_NAME = 253
MAX_LABEL = 63
MAX_TEXT = 1024

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
"""A name such as a Kubernetes object name or a model name (syntax checked where it matters)."""

ShortName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL)]
"""A name that must fit in a DNS label or a label value."""

Text = Annotated[str, Field(max_length=MAX_TEXT)]
"""Free text for humans: a purpose, a condition message."""

ModelT = TypeVar("ModelT", bound="ApiModel")


@dataclass(frozen=True)
class CrossFieldRule(Generic[ModelT]):
    """A rule over several fields of one object, written once for both enforcement points.

    `cel` goes into the CRD as an `x-kubernetes-validations` entry, so the API server refuses a
    violating object even when no webhook runs; `holds` is the same rule in Python, so pydantic
    (and thus `aigis scan`) refuses it offline with the same `message`. Keep the two in step:
    `has(self.x)` is `self.x is not None` (nulls are dropped before validation).
    """

    cel: str
    message: str
    holds: Callable[[ModelT], bool]


def _add_cross_field_rules(schema: dict[str, JsonValue], model: type) -> None:
    rules: tuple[CrossFieldRule[Any], ...] = getattr(model, "cross_field_rules", ())
    if rules:
        validations: list[JsonValue] = [{"rule": r.cel, "message": r.message} for r in rules]
        schema["x-kubernetes-validations"] = validations


class ApiModel(BaseModel):
    """Base of every aigis API model.

    - camelCase in YAML/JSON, snake_case in Python; dumps use the camelCase names.
    - Unknown fields are refused, so a typo is reported with its path instead of being silently
      pruned (the API server prunes unknown fields of a structural schema).
    - Strict types: `"80"` is not a port and `"true"` is not a boolean, as for the API server.
    - `null` means "absent", as for the API server, so an explicit `null` gets the default.
    - Attribute docstrings become the field descriptions of the generated CRD.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        json_schema_extra=_add_cross_field_rules,
    )

    cross_field_rules: ClassVar[tuple[CrossFieldRule[Any], ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> Self:
        for rule in self.cross_field_rules:
            if not rule.holds(self):
                raise ValueError(rule.message)
        return self


def defaulted(model: type[ApiModel]) -> Any:
    """Field default for a section whose every field has a default (e.g. `guardrails`).

    The CRD gets `default: {}`, so the API server fills in the section and, recursively, its
    fields: the stored object then says explicitly which guardrails are on.
    """
    return Field(default_factory=model, json_schema_extra={"default": {}})


SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector, as in Kubernetes."""

    key: Name
    """The label key the requirement applies to."""
    operator: SelectorOperator
    """How the label's value relates to `values`."""
    values: list[ShortName] | None = Field(None, max_length=64)
    """Label values: required for In and NotIn, forbidden for Exists and DoesNotExist."""

    cross_field_rules = (
        CrossFieldRule["LabelSelectorRequirement"](
            cel="self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
            " : (!has(self.values) || size(self.values) == 0)",
            message="operators In and NotIn need at least one value in values; "
            "Exists and DoesNotExist take no values",
            holds=lambda r: bool(r.values) if r.operator in ("In", "NotIn") else not r.values,
        ),
    )


class LabelSelector(ApiModel):
    """A Kubernetes label selector: every matchLabels pair and every matchExpressions entry
    must hold."""

    match_labels: dict[str, Annotated[str, Field(max_length=MAX_LABEL)]] | None = Field(
        None, max_length=64
    )
    """Labels a pod must carry, key to exact value."""
    match_expressions: list[LabelSelectorRequirement] | None = Field(None, max_length=32)
    """Set-based requirements on labels."""

    def is_empty(self) -> bool:
        """An empty selector matches everything."""
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels is selected, with Kubernetes' semantics."""
        for key, value in (self.match_labels or {}).items():
            if labels.get(key) != value:
                return False
        for requirement in self.match_expressions or ():
            present = requirement.key in labels
            values = requirement.values or ()
            if requirement.operator == "In" and labels.get(requirement.key) not in values:
                return False
            if requirement.operator == "NotIn" and present and labels[requirement.key] in values:
                return False
            if requirement.operator == "Exists" and not present:
                return False
            if requirement.operator == "DoesNotExist" and present:
                return False
        return True

    def to_kubernetes(self) -> dict[str, Any]:
        """The selector as the Kubernetes API writes it (camelCase, no empty fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class PodSelector(LabelSelector):
    """A label selector that must not be empty: an empty one would select every pod."""

    cross_field_rules = (
        CrossFieldRule["PodSelector"](
            cel="(has(self.matchLabels) && size(self.matchLabels) > 0)"
            " || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
            message="an empty selector would cover every pod of the namespace; "
            "add matchLabels (e.g. app: my-chatbot) or matchExpressions",
            holds=lambda s: not s.is_empty(),
        ),
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One aspect of an object's state, in the Kubernetes condition convention."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """What the condition is about, e.g. Ready."""
    status: ConditionStatus
    """Whether the condition holds."""
    reason: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    """A CamelCase word saying why, for machines."""
    message: Text = ""
    """Why, for humans."""
    last_transition_time: Annotated[
        str, Field(max_length=64, json_schema_extra={"format": "date-time"})
    ]
    """When `status` last changed (RFC 3339)."""
    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation this condition was computed from."""


class ObjectMeta(ApiModel):
    """The part of Kubernetes object metadata aigis reads; other fields are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """The identity of a custom resource: everything the API server needs besides its schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    categories: tuple[str, ...] = ("aigis",)
    group: str = GROUP
    version: str = VERSION

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def singular(self) -> str:
        return self.kind.lower()


class KubernetesObject(ApiModel):
    """Base of the top-level resources: metadata plus the resource's identity."""

    resource: ClassVar[ResourceKind]

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
