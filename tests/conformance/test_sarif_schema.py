"""`aigis scan --output sarif` validates against the OASIS SARIF 2.1.0 JSON schema.

The schema is the official `sarif-schema-2.1.0.json` as embedded in the Go module
github.com/owenrumney/go-sarif/v3; `make control-plane` extracts it into
`$AIGIS_CACHE/schemas` (version pinned in hack/versions.env as GO_SARIF_VERSION). No test
downloads anything, and no copy of the schema is kept in this repository.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from aigis.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "scan"
SCHEMA = (
    Path(os.environ.get("AIGIS_CACHE", Path.home() / ".cache" / "aigis"))
    / "schemas"
    / "sarif-schema-2.1.0.json"
)


@lru_cache(maxsize=1)
def sarif_schema() -> dict[str, Any]:
    assert SCHEMA.exists(), f"{SCHEMA} is missing; run `make control-plane` (it extracts it)"
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return dict(schema)


def scan_sarif(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["scan", "-o", "sarif", "--now", "2026-03-01", *args])
    return result.exit_code, json.loads(result.stdout)


def test_sarif_validates_against_the_oasis_schema() -> None:
    code, log = scan_sarif(str(DATA))
    assert code == 1
    validator = jsonschema.Draft4Validator(
        sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_a_broken_log_does_not_validate() -> None:
    _, log = scan_sarif(str(DATA))
    log["runs"][0]["results"][0]["level"] = "deny"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, sarif_schema(), cls=jsonschema.Draft4Validator)
