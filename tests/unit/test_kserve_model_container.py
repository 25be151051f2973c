"""KServe's `spec.predictor.model` is the pod's main container (KServe's controller makes it
`kserve-container`): admission reviews it like the containers of any pod template, so an
InferenceService is refused when applied, not only when KServe's pod is.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aigis.scan import parse_documents, review_documents

NOW = datetime(2026, 12, 6, tzinfo=UTC)

POLICY = """
apiVersion: aigis.dev/v1alpha1
kind: AIClusterPolicy
metadata: {name: strict}
spec:
  namespaceSelector: {matchLabels: {team: ml}}
  enforcement: Enforce
  shadowAI: Enforce
  podSecurity: baseline
  allowedRegistries: [registry.example.com]
---
apiVersion: v1
kind: Namespace
metadata: {name: ml, labels: {team: ml}}
"""

WORKLOAD = """
---
apiVersion: aigis.dev/v1alpha1
kind: AIWorkload
metadata: {name: llm, namespace: ml}
spec:
  selector: {matchLabels: {app: llm}}
  owner: team-ml
  purpose: serves the support model
  enforcement: Enforce
  models: [{provider: openai, name: gpt-4o-mini}]
  egress: [{host: api.openai.com}]
  gateway:
    providerKeys: [{provider: openai, secretRef: {name: llm-keys, key: openai}}]
"""


def inference_service(model: str, *, field: str = "model") -> str:
    return f"""
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {{name: llm, namespace: ml, labels: {{app: llm}}}}
spec:
  predictor:
    {field}:
{model}
"""


def reasons(text: str) -> dict[str, set[str]]:
    """rule -> the paths it names, for the InferenceService."""
    reviews = review_documents(parse_documents(text, "manifests.yaml"), now=NOW)
    (review,) = [r for r in reviews if r.kind == "InferenceService"]
    found: dict[str, set[str]] = {}
    for reason in (*review.decision.reasons, *review.decision.warnings):
        found.setdefault(reason.rule, set()).add(reason.path)
    return found


PRIVILEGED = (
    """      modelFormat: {name: sklearn}
      image: registry.example.com/server@sha256:"""
    + "a" * 64
    + """
      securityContext: {privileged: true}"""
)


@pytest.mark.parametrize("field", ["model", "sklearn", "huggingface"])
def test_a_privileged_model_container_is_refused_where_it_is(field: str) -> None:
    found = reasons(POLICY + WORKLOAD + inference_service(PRIVILEGED, field=field))
    assert found["pod-security/privileged"] == {
        f"spec.predictor.{field}.securityContext.privileged"
    }


def test_the_model_containers_image_meets_the_policys_registries() -> None:
    model = """      modelFormat: {name: huggingface}
      image: elsewhere.example.org/server:1"""
    found = reasons(POLICY + WORKLOAD + inference_service(model))
    assert "spec.predictor.model.image" in found["image/registry"]


def test_an_undeclared_model_container_is_shadow_ai_with_its_evidence() -> None:
    model = """      modelFormat: {name: huggingface}
      image: registry.example.com/server:1
      args: ["--model_id=meta-llama/Llama-3.1-8B-Instruct"]"""
    found = reasons(POLICY + inference_service(model))
    assert "shadow-ai" in found
    reviews = review_documents(
        parse_documents(POLICY + inference_service(model), "m.yaml"), now=NOW
    )
    message = " ".join(r.message for r in reviews[-1].decision.reasons)
    assert "spec.predictor.model.args[0]" in message


def test_a_plain_predictor_without_the_model_field_is_unchanged() -> None:
    plain = (
        """      - name: server
        image: registry.example.com/server@sha256:"""
        + "b" * 64
    )
    found = reasons(POLICY + WORKLOAD + inference_service(plain, field="containers"))
    assert "pod-security/privileged" not in found
