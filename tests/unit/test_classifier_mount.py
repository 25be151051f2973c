"""A workload's prompt-injection classifier reaches the injected gateway through a volume.

Validation keeps the mount under /models/ (so it can never shadow the gateway's code, config or
keys) and requires the volume while the gateway is injected; the injection mounts it read-only
in the gateway only, and the validating side treats a gateway without it (or with another
source) as not aigis's.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_mutation import SETTINGS, gateway_of, inject, pod, volume, workload

from aigis.admission.mutation import CLASSIFIER_VOLUME, gateway_differences, render_gateway
from aigis.api.validation import check_aiworkload_spec

FIELD = "spec.guardrails.promptInjection.classifier"
IMAGE = "registry.example.com/models/injection@sha256:" + "b" * 64


def with_classifier(classifier: dict[str, Any], **spec: Any) -> Any:
    return workload(guardrails={"promptInjection": {"classifier": classifier}}, **spec)


def problems(classifier: dict[str, Any], **spec: Any) -> dict[str, str]:
    target = with_classifier(classifier, **spec)
    return {e.path: e.message for e in check_aiworkload_spec(target.spec)}


@pytest.mark.parametrize(
    ("classifier", "field", "says"),
    [
        pytest.param({"path": "/models/pi"}, f"{FIELD}.volume", "is required", id="no-volume"),
        pytest.param(
            {"path": "/opt/aigis", "volume": {"image": IMAGE}},
            f"{FIELD}.path",
            "under /models/",
            id="over-the-gateway-code",
        ),
        pytest.param(
            {"path": "/models/../etc/aigis", "volume": {"image": IMAGE}},
            f"{FIELD}.path",
            "under /models/",
            id="dot-dot-escape",
        ),
        pytest.param(
            {"path": "/models", "volume": {"image": IMAGE}},
            f"{FIELD}.path",
            "under /models/",
            id="the-root-itself",
        ),
        pytest.param(
            {"path": "/models/pi", "volume": {"persistentVolumeClaim": "Models_PVC"}},
            f"{FIELD}.volume.persistentVolumeClaim",
            "PersistentVolumeClaim",
            id="bad-claim-name",
        ),
    ],
)
def test_a_classifier_for_the_gateway_needs_a_safe_mount(
    classifier: dict[str, Any], field: str, says: str
) -> None:
    found = problems(classifier)
    assert field in found, found
    assert says in found[field]


def test_a_classifier_with_an_image_volume_under_models_is_valid() -> None:
    assert problems({"path": "/models/pi", "volume": {"image": IMAGE}}) == {}


def test_without_the_gateway_the_volume_is_not_required() -> None:
    assert problems({"path": "/srv/pi"}, gateway={"inject": False}) == {}


def test_a_volume_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of image or persistentVolumeClaim"):
        with_classifier(
            {"path": "/models/pi", "volume": {"image": IMAGE, "persistentVolumeClaim": "models"}}
        )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"image": IMAGE}, {"image": {"reference": IMAGE, "pullPolicy": "IfNotPresent"}}),
        (
            {"persistentVolumeClaim": "models"},
            {"persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
        ),
    ],
)
def test_the_classifier_volume_is_mounted_read_only_in_the_gateway_only(
    source: dict[str, Any], expected: dict[str, Any]
) -> None:
    target = with_classifier({"path": "/models/pi", "volume": source})
    patched = inject(pod(), target)
    assert {k: v for k, v in volume(patched, CLASSIFIER_VOLUME).items() if k != "name"} == expected
    mounts = {m["name"]: m for m in gateway_of(patched)["volumeMounts"]}
    assert mounts[CLASSIFIER_VOLUME] == {
        "name": CLASSIFIER_VOLUME,
        "mountPath": "/models/pi",
        "readOnly": True,
    }
    app = patched["spec"]["containers"][0]
    assert CLASSIFIER_VOLUME not in {m["name"] for m in app.get("volumeMounts", [])}
    expected_gateway = render_gateway("support-bot", target.spec, SETTINGS)
    assert (
        gateway_differences(gateway_of(patched), patched["spec"]["volumes"], expected_gateway) == []
    )


def test_a_gateway_with_another_model_source_is_not_aigis_s() -> None:
    """A pod carrying the gateway with the classifier volume swapped for another claim (a model
    the team controls, say) differs from the rendered gateway in its mounts."""
    target = with_classifier({"path": "/models/pi", "volume": {"persistentVolumeClaim": "models"}})
    patched = inject(pod(), target)
    volumes = [
        {"name": v["name"], "persistentVolumeClaim": {"claimName": "mine", "readOnly": True}}
        if v["name"] == CLASSIFIER_VOLUME
        else v
        for v in patched["spec"]["volumes"]
    ]
    expected_gateway = render_gateway("support-bot", target.spec, SETTINGS)
    assert "volumeMounts" in gateway_differences(gateway_of(patched), volumes, expected_gateway)
