"""Shadow-AI detection measured on a corpus: AI manifests must be found, ordinary ones not.

`tests/data/shadow/ai/` holds AI workloads of every shape aigis reads (model servers, apps that
call models, training jobs, the AI-native kinds); `tests/data/shadow/plain/` ordinary workloads.
Both are written for aigis, modelled on public samples (docs/oversight.md lists them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aigis.admission.shadow import ai_evidence, looks_like_ai
from aigis.admission.templates import pod_templates

CORPUS = Path(__file__).resolve().parents[1] / "data" / "shadow"
MIN_RECALL = 0.95


def workloads(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((CORPUS / kind).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document and pod_templates(document):
                found.append((path.name, document))
    return found


def is_ai(obj: dict[str, Any]) -> bool:
    return any(looks_like_ai(ai_evidence(t)) for t in pod_templates(obj))


def test_corpus_is_big_enough() -> None:
    assert len(workloads("ai")) >= 25
    assert len(workloads("plain")) >= 20


def test_recall_on_ai_workloads() -> None:
    corpus = workloads("ai")
    missed = [name for name, obj in corpus if not is_ai(obj)]
    recall = 1 - len(missed) / len(corpus)
    assert recall >= MIN_RECALL, f"recall {recall:.2f}; missed: {missed}"


@pytest.mark.parametrize(
    ("name", "obj"), workloads("plain"), ids=[name for name, _ in workloads("plain")]
)
def test_no_false_alarm_on_ordinary_workloads(name: str, obj: dict[str, Any]) -> None:
    evidence = [e for t in pod_templates(obj) for e in ai_evidence(t)]
    assert not is_ai(obj), f"{name}: {[e.detail for e in evidence]}"
