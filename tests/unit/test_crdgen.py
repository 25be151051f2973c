"""CRDs generated from the models: structural, deterministic, and in sync with `crds/`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from aigis.api.common import ApiModel, KubernetesObject, ResourceKind
from aigis.crdgen import (
    crd_file_name,
    dump_crd,
    render_crds,
    structural_schema,
    write_crds,
)

REPO = Path(__file__).resolve().parents[2]


def aiworkload_crd() -> dict[str, Any]:
    (crd,) = [c for c in render_crds() if c["spec"]["names"]["kind"] == "AIWorkload"]
    return crd


def openapi(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")


def every_node() -> list[tuple[str, dict[str, Any]]]:
    return [(p, n) for crd in render_crds() for p, n in walk(openapi(crd))]


def test_schema_is_structural() -> None:
    for path, node in every_node():
        for keyword in ("$ref", "$defs", "title", "oneOf", "allOf", "nullable"):
            assert keyword not in node, f"{path} has {keyword}"
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        if "anyOf" in node:
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert node.get("x-kubernetes-int-or-string") is True, path
        assert not ({"properties", "additionalProperties"} <= node.keys()), path
        assert node.get("default", "absent") is not None, f"{path} has default: null"
        assert node.get("format") in (None, "date", "date-time", "int32", "int64"), path


def test_every_string_list_and_map_is_bounded_for_cel_cost() -> None:
    for path, node in every_node():
        if path in (".apiVersion", ".kind", ".metadata"):
            continue  # owned by the API server
        kind = node.get("type")
        if kind == "string":
            assert "maxLength" in node or "enum" in node or "format" in node, path
        elif kind == "array":
            assert "maxItems" in node, path
        elif kind == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def _conforms(value: Any, node: dict[str, Any]) -> bool:
    """Enough of OpenAPI validation to tell whether a default fits its own schema."""
    kind = node.get("type")
    checks = {
        "object": lambda: (
            isinstance(value, dict)
            and all(
                r in value or "default" in node["properties"][r] for r in node.get("required", [])
            )
            and all(
                k in node.get("properties", {}) and _conforms(v, node["properties"][k])
                for k, v in value.items()
            )
        ),
        "array": lambda: (
            isinstance(value, list)
            and node.get("minItems", 0) <= len(value) <= node.get("maxItems", len(value))
            and all(_conforms(v, node["items"]) for v in value)
        ),
        "string": lambda: isinstance(value, str),
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda: isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": lambda: isinstance(value, bool),
    }
    if not checks[kind]():
        return False
    if "enum" in node and value not in node["enum"]:
        return False
    return (
        node.get("minimum", value) <= value <= node.get("maximum", value)
        if kind
        in (
            "integer",
            "number",
        )
        else True
    )


def test_every_default_validates_against_its_own_schema() -> None:
    defaults = [(p, n) for p, n in every_node() if "default" in n]
    assert len(defaults) > 10
    for path, node in defaults:
        assert _conforms(node["default"], node), f"{path}: default {node['default']!r}"


def test_aiworkload_crd_identity() -> None:
    crd = aiworkload_crd()
    assert crd["metadata"]["name"] == "aiworkloads.aigis.dev"
    spec = crd["spec"]
    assert spec["group"] == "aigis.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "AIWorkload",
        "listKind": "AIWorkloadList",
        "plural": "aiworkloads",
        "singular": "aiworkload",
        "shortNames": ["aiw"],
        "categories": ["aigis"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Enforcement", "Ready", "Reason", "Compliant", "Owner", "Age"]
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Owner"]["priority"] == 1
    assert openapi(crd)["required"] == ["spec"]


def test_status_conditions_are_a_map_keyed_on_type_and_violations_are_capped() -> None:
    status = openapi(aiworkload_crd())["properties"]["status"]["properties"]
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]
    assert status["violations"]["maxItems"] == 50


def test_every_cross_field_rule_reaches_the_crd_as_cel() -> None:
    text = yaml.safe_dump(render_crds())
    cel = yaml.safe_load(text)  # compare parsed, not folded, text
    rules = {
        v["rule"]
        for crd in cel
        for _, node in walk(openapi(crd))
        for v in node.get("x-kubernetes-validations", [])
    }
    models: list[type[ApiModel]] = []
    pending = list(ApiModel.__subclasses__())
    while pending:
        model = pending.pop()
        models.append(model)
        pending += model.__subclasses__()
    declared = {
        r.cel for m in models if m.__module__.startswith("aigis.") for r in m.cross_field_rules
    }
    assert declared
    assert declared <= rules


def test_crds_on_disk_match_the_models() -> None:
    for crd in render_crds():
        path = REPO / "crds" / crd_file_name(crd)
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text(encoding="utf-8") == dump_crd(crd), (
            f"{path} is out of date with the models in operator/aigis/api: run `make crds`"
        )


def test_write_crds_writes_one_deterministic_file_per_crd(tmp_path: Path) -> None:
    paths = write_crds(tmp_path / "crds")
    assert [p.name for p in paths] == [
        "aiworkloads.aigis.dev.yaml",
        "aiclusterpolicies.aigis.dev.yaml",
        "forensicsnapshots.aigis.dev.yaml",
    ]
    first = paths[0].read_text(encoding="utf-8")
    assert first.startswith("# Generated by `make crds`")
    assert first.endswith("\n")
    assert "&id" not in first
    assert yaml.safe_load(first) == aiworkload_crd()
    write_crds(tmp_path / "crds")
    assert paths[0].read_text(encoding="utf-8") == first


class _Cat(ApiModel):
    meow: bool = True


class _Dog(ApiModel):
    woof: bool = True


class _Pet(KubernetesObject):
    resource: ClassVar[ResourceKind] = ResourceKind(kind="Pet", plural="pets")
    spec: _Cat | _Dog


def test_a_union_the_api_server_cannot_represent_fails_generation() -> None:
    with pytest.raises(ValueError, match="union has no structural-schema equivalent"):
        structural_schema(_Pet)


def test_cluster_policy_crd_is_cluster_scoped_with_camel_case_shadow_ai() -> None:
    crd = next(c for c in render_crds() if c["spec"]["names"]["kind"] == "AIClusterPolicy")
    assert crd["spec"]["scope"] == "Cluster"
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    assert spec["shadowAI"]["enum"] == ["Off", "Audit", "Enforce"]
    assert spec["unknownRegions"]["default"] == "Deny"
