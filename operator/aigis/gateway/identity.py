"""Where the gateway sidecar finds its audit key, its chain state and the pod it runs in.

One table shared by three parties that must agree byte for byte: the operator creates each
workload's audit-key Secret, the injection (`aigis.admission.mutation`) mounts it and the state
directory into the gateway container and passes the pod's identity through the downward API, and
`aigis gateway` reads them through the flags named here.

The audit key is per workload: the operator creates `aigis-audit-<workload>` (owned by the
AIWorkload, so it goes with it) holding 32 random bytes under `hmac-key`. It is mounted into the
gateway container only; app containers never see it. Anyone who can read Secrets in the
namespace can read it, exactly as for the provider keys, so the chain proves the log was not
edited by someone who could only write the log (a node's log files, a log pipeline).

Pure constants and plain data: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

AUDIT_KEY_SECRET_PREFIX: Final = "aigis-audit-"  # noqa: S105 - a name, not a secret
AUDIT_KEY_SECRET_KEY: Final = "hmac-key"  # noqa: S105 - a name, not a secret
"""The data key of the audit-key Secret."""
AUDIT_KEY_DIR: Final = "/var/run/aigis/audit-key"
"""Where the injection mounts the audit-key Secret in the gateway container."""
AUDIT_KEY_FILE: Final = f"{AUDIT_KEY_DIR}/{AUDIT_KEY_SECRET_KEY}"
"""The file `aigis gateway --audit-key-file` reads."""
AUDIT_STATE_DIR: Final = "/var/run/aigis/audit-state"
"""An emptyDir of the gateway's own (survives container restarts, not the pod): the last hash
and sequence number written, so the start record after a restart names where the chain stood."""

# Gateway flags and the environment variables the injection sets from the downward API.
AUDIT_KEY_FLAG: Final = "--audit-key-file"
AUDIT_STATE_FLAG: Final = "--audit-state-dir"
POD_NAME_ENV: Final = "AIGIS_POD_NAME"
POD_NAMESPACE_ENV: Final = "AIGIS_POD_NAMESPACE"
POD_UID_ENV: Final = "AIGIS_POD_UID"


def audit_key_secret_name(workload_name: str) -> str:
    """`aigis-audit-<workload>`, shortened with a hash suffix to fit a 253-character name."""
    name = AUDIT_KEY_SECRET_PREFIX + workload_name
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(workload_name.encode()).hexdigest()[:10]
    return name[: 253 - 11] + "-" + digest


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """The pod a gateway runs in, from the downward API (`POD_*_ENV`); empty outside a pod."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
