"""Loading the gateway's configuration from its mounted file, and noticing when it changes.

A `GatewayState` is everything compiled from one configuration: the config, the guardrail
pipeline, the provider keys and the rate limiter. The server swaps the whole state at once, so a
request in flight finishes with the state it started with and none ever sees half a reload.
Kubernetes updates a mounted ConfigMap by swapping a symlink, and a rotated Secret the same way,
so a change is detected by the identity (device, inode), size and mtime of every file the state
was built from, polled, rather than by inotify on a path that is about to be replaced.

This is shell code: it reads files. The decisions stay in `config` and `policy`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aigis.api.aiworkload import Guardrails
from aigis.api.errors import FieldError
from aigis.gateway.config import GatewayConfig, Upstream, parse_gateway_config
from aigis.gateway.inspection import PipelineFactory, PipelineLike
from aigis.gateway.limits import TokenBucket
from aigis.gateway.policy import Refusal, check_upstream

log = logging.getLogger("aigis.gateway")

FileIdentity = tuple[int, int, int, int] | None
"""(device, inode, size, mtime in ns) of a file, None when it cannot be read."""


@dataclass(slots=True)
class GatewayState:
    """One configuration, compiled and ready to serve requests."""

    config: GatewayConfig
    pipeline: PipelineLike
    keys: dict[str, str] = field(repr=False)
    """Provider -> API key. Never logged: `repr` leaves it out."""
    bucket: TokenBucket | None
    fingerprint: tuple[FileIdentity, ...]
    generation: int = 1
    offload_scans: bool = False
    """Whether scanning a request may wait on a model (the workload's prompt-injection
    classifier): the server then scans on a worker thread, so the event loop keeps serving
    other requests while the model runs."""
    _upstream_checks: dict[str, Refusal | None] = field(default_factory=dict, repr=False)

    def upstream_check(self, upstream: Upstream) -> Refusal | None:
        """`check_upstream` under this configuration, worked out once per upstream.

        It depends on the configuration alone, which a state never changes; every request
        repeated it (parsing the URL, matching the host rules) before.
        """
        key = upstream.base_url
        if key not in self._upstream_checks:
            self._upstream_checks[key] = check_upstream(self.config, upstream)
        return self._upstream_checks[key]


def default_pipeline_factory(config: GatewayConfig) -> PipelineLike:
    """The real guardrails engine, compiled for one workload's configuration.

    The phone formats of the workload's `dataRegions` count as phone numbers, and the
    prompt-injection classifier the workload mounts is loaded here, once per configuration (a
    model that cannot be loaded fails the load, so the previous configuration keeps serving).
    """
    from aigis.guardrails import GuardrailPipeline

    guardrails = config.guardrails
    wanted = guardrails.prompt_injection.active_classifier
    classifier = None
    if wanted is not None:
        # Imported only here: it brings numpy, which a gateway without a model never needs.
        from aigis.guardrails.onnx_classifier import ClassifierError, load_classifier

        try:
            classifier = load_classifier(wanted, name=config.name)
        except ClassifierError as exc:
            raise ValueError(f"promptInjection.classifier: {exc}") from exc
    pipeline: PipelineLike = GuardrailPipeline.from_spec(
        guardrails, classifier=classifier, data_regions=config.data_regions
    )
    return pipeline


def waits_on_model(guardrails: Guardrails) -> bool:
    """Whether a scan under `guardrails` may wait on a model (see `GatewayState.offload_scans`)."""
    return guardrails.prompt_injection.active_classifier is not None


def file_identity(path: str | Path) -> FileIdentity:
    """What identifies one version of a file (following symlinks, as ConfigMap mounts use)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def state_fingerprint(config_path: Path, config: GatewayConfig | None) -> tuple[FileIdentity, ...]:
    """Identities of the config file and of every key file the config names."""
    keys = [u.key_file for u in config.upstreams if u.key_file] if config is not None else []
    return (file_identity(config_path), *(file_identity(key) for key in keys))


def load_gateway_state(
    config_path: Path,
    pipeline_factory: PipelineFactory,
    *,
    now: float,
    previous: GatewayState | None = None,
) -> GatewayState | list[FieldError]:
    """Read, validate and compile the config at `config_path`; every problem when it fails.

    The rate limiter carries over from `previous` while the rate stays the same, so a reload does
    not hand out a fresh burst.
    """
    try:
        text = config_path.read_bytes()
    except OSError as exc:
        return [FieldError(str(config_path), f"cannot be read: {exc.strerror or exc}")]
    config, problems = parse_gateway_config(text)
    if config is None:
        return problems
    fingerprint = state_fingerprint(config_path, config)
    keys: dict[str, str] = {}
    for index, upstream in enumerate(config.upstreams):
        if upstream.key_file is None:
            continue
        try:
            key = Path(upstream.key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            return [
                FieldError(
                    f"upstreams[{index}].keyFile",
                    f'the key file "{upstream.key_file}" cannot be read ({reason}); '
                    "mount the provider key Secret there",
                )
            ]
        if not key:
            return [
                FieldError(
                    f"upstreams[{index}].keyFile",
                    f'the key file "{upstream.key_file}" is empty; '
                    "put the provider key in the Secret",
                )
            ]
        keys[upstream.provider] = key
    try:
        pipeline = pipeline_factory(config)
    except Exception as exc:  # a spec the engine cannot compile must not replace a working one
        return [FieldError("guardrails", f"cannot be compiled: {exc}")]
    limits = config.guardrails.limits
    per_minute = limits.requests_per_minute if limits is not None else None
    bucket: TokenBucket | None = None
    if per_minute is not None:
        old = previous.bucket if previous is not None else None
        bucket = old if old is not None and old.per_minute == per_minute else None
        bucket = bucket or TokenBucket.full(per_minute, now)
    return GatewayState(
        config=config,
        pipeline=pipeline,
        keys=keys,
        bucket=bucket,
        fingerprint=fingerprint,
        generation=previous.generation + 1 if previous is not None else 1,
        offload_scans=waits_on_model(config.guardrails),
    )


class ConfigWatcher:
    """Polls the config (and key) files; applies a valid new version, keeps the old otherwise."""

    def __init__(
        self,
        config_path: Path,
        pipeline_factory: PipelineFactory,
        current: Callable[[], GatewayState],
        apply: Callable[[GatewayState], None],
        refused: Callable[[list[FieldError]], None],
        clock: Callable[[], float],
        interval_seconds: float = 2.0,
    ) -> None:
        self._path = config_path
        self._factory = pipeline_factory
        self._current = current
        self._apply = apply
        self._refused = refused
        self._clock = clock
        self._interval = interval_seconds
        self._refused_fingerprint: tuple[FileIdentity, ...] | None = None

    def check(self) -> bool:
        """Reload if any file changed; whether a new state was applied."""
        state = self._current()
        fingerprint = state_fingerprint(self._path, state.config)
        if fingerprint == state.fingerprint or fingerprint == self._refused_fingerprint:
            return False
        loaded = load_gateway_state(self._path, self._factory, now=self._clock(), previous=state)
        if isinstance(loaded, list):
            # Remember the refused version so it is reported once, not at every poll.
            self._refused_fingerprint = fingerprint
            self._refused(loaded)
            return False
        self._refused_fingerprint = None
        self._apply(loaded)
        return True

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.check()
            except Exception:
                log.exception("checking %s for changes failed; will retry", self._path)
