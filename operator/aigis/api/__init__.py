"""aigis's API: the resources users declare, as pydantic models, and the checks on them.

The models are the one definition of each resource (the CRDs in `crds/` are generated from them
by `aigis.crdgen`); `validation` holds the checks a schema cannot express. Pure: no I/O below.
"""

from aigis.api.aiworkload import (
    AIWORKLOAD,
    AIWorkload,
    AIWorkloadSpec,
    AIWorkloadStatus,
)
from aigis.api.common import GROUP, VERSION, Condition, LabelSelector, ResourceKind
from aigis.api.errors import FieldError
from aigis.api.forensicsnapshot import FORENSICSNAPSHOT, ForensicSnapshot
from aigis.api.regions import DATA_REGIONS
from aigis.api.validation import parse_aiworkload, parse_aiworkload_spec

__all__ = [
    "AIWORKLOAD",
    "DATA_REGIONS",
    "FORENSICSNAPSHOT",
    "GROUP",
    "VERSION",
    "AIWorkload",
    "AIWorkloadSpec",
    "AIWorkloadStatus",
    "Condition",
    "FieldError",
    "ForensicSnapshot",
    "LabelSelector",
    "ResourceKind",
    "parse_aiworkload",
    "parse_aiworkload_spec",
]
