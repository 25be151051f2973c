"""The AIWorkload status the operator writes, as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aigis.api.errors import FieldError
from aigis.controller.status import MAX_VIOLATIONS, build_aiworkload_status

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
HOST_ERROR = FieldError(
    "spec.egress[0].host", '"https://x.example" is a URL, not a host; write "x.example"'
)


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_valid_spec_is_ready_and_not_invalid() -> None:
    status = build_aiworkload_status(generation=3, errors=[], previous_status=None, now=T0)
    by_type = conditions(status)
    assert status["observedGeneration"] == 3
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Invalid"]["status"] == "False"
    assert by_type["Ready"]["observedGeneration"] == 3
    assert by_type["Ready"]["lastTransitionTime"] == "2026-11-29T12:00:00Z"
    assert status["violations"] == []


def test_invalid_spec_names_the_field_in_condition_and_violations() -> None:
    status = build_aiworkload_status(
        generation=1, errors=[HOST_ERROR], previous_status=None, now=T0
    )
    by_type = conditions(status)
    assert by_type["Ready"]["status"] == "False"
    assert by_type["Ready"]["reason"] == "InvalidSpec"
    assert by_type["Invalid"]["status"] == "True"
    assert "spec.egress[0].host" in by_type["Invalid"]["message"]
    assert status["violations"] == [
        {"rule": "InvalidSpec", "path": HOST_ERROR.path, "message": HOST_ERROR.message}
    ]


@pytest.mark.parametrize(
    ("before_errors", "after_errors", "moves"),
    [
        pytest.param([], [], False, id="still-valid-keeps-transition-time"),
        pytest.param([HOST_ERROR], [HOST_ERROR], False, id="still-invalid-keeps-transition-time"),
        pytest.param([], [HOST_ERROR], True, id="valid-to-invalid-moves-transition-time"),
        pytest.param([HOST_ERROR], [], True, id="invalid-to-valid-moves-transition-time"),
    ],
)
def test_transition_time_moves_only_when_status_changes(
    before_errors: list[FieldError], after_errors: list[FieldError], moves: bool
) -> None:
    before = build_aiworkload_status(
        generation=1, errors=before_errors, previous_status=None, now=T0
    )
    after = build_aiworkload_status(
        generation=2, errors=after_errors, previous_status=before, now=T1
    )
    expected = "2026-11-29T12:05:00Z" if moves else "2026-11-29T12:00:00Z"
    assert conditions(after)["Ready"]["lastTransitionTime"] == expected


def test_status_stays_small_with_many_errors() -> None:
    errors = [FieldError(f"spec.egress[{i}].host", "x" * 5000) for i in range(500)]
    status = build_aiworkload_status(generation=1, errors=errors, previous_status=None, now=T0)
    assert len(status["violations"]) == MAX_VIOLATIONS
    assert all(len(v["message"]) <= 1024 for v in status["violations"])
    assert len(conditions(status)["Ready"]["message"]) <= 1024
    assert "and 497 more" not in conditions(status)["Ready"]["message"]  # clipped before the tail
    assert len(str(status)) < 40_000


def test_message_counts_errors_beyond_the_first_three() -> None:
    errors = [FieldError(f"spec.dataRegions[{i}]", "unknown region") for i in range(5)]
    status = build_aiworkload_status(generation=1, errors=errors, previous_status=None, now=T0)
    assert conditions(status)["Ready"]["message"].endswith("and 2 more (see status.violations)")


def test_garbage_previous_status_is_ignored() -> None:
    junk = {"conditions": [None, "x", {"type": 7}, {"status": "True"}]}
    status = build_aiworkload_status(generation=None, errors=[], previous_status=junk, now=T0)
    assert "observedGeneration" not in status
    assert conditions(status)["Ready"]["lastTransitionTime"] == "2026-11-29T12:00:00Z"
