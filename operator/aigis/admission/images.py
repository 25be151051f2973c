"""Container image references: which registry an image comes from and whether it is pinned.

An image string is read the way container runtimes read it (the `distribution/reference`
grammar), because that is what decides where the bytes are pulled from: the first path segment is
a registry host only if it contains a dot or a port, is `localhost`, or has an upper-case letter;
otherwise the image is on Docker Hub (`docker.io`), and a one-segment Docker Hub name is an
official image under `library/`. `index.docker.io` is Docker Hub's old name. Reading it any other
way would let `nginx` slip past an allow-list of `docker.io/library` or let
`docker.io.evil.example/x` pass for Docker Hub.

Allow-list entries (`AIClusterPolicy.spec.allowedRegistries`) match on whole path segments:
`ghcr.io/acme` allows `ghcr.io/acme/bot`, never `ghcr.io/acme-evil/bot` (a plain string prefix, as
some policy libraries use, would).

Pure: no I/O. Must not import the webhook server, the operator or the gateway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

DOCKER_HUB: Final = "docker.io"
_LEGACY_DOCKER_HUB: Final = "index.docker.io"
_OFFICIAL_NAMESPACE: Final = "library"

_SEGMENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
# Digest algorithms registries serve, with the length of their hex encoding.
_DIGEST_HEX_LENGTHS: Final = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
_MAX_REFERENCE = 4096


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image reference split into its parts, Docker Hub defaults applied."""

    registry: str
    """Registry host, with its port if any (`docker.io`, `registry.example.com:5000`)."""
    repository: str
    """Path inside the registry (`library/nginx`, `vllm/vllm-openai`)."""
    tag: str | None
    digest: str | None
    """`algorithm:hex` when the reference is pinned, as written (validity: `digest_problem`)."""

    @property
    def name(self) -> str:
        """The fully qualified repository, `registry/repository`."""
        return f"{self.registry}/{self.repository}"


@lru_cache(maxsize=4096)
def parse_image(text: str) -> ImageRef | str:
    """The reference `text` names, or why it names none (a message to show the user).

    Cached: the same few images appear in every pod of a Deployment, and parsing is pure.
    """
    if not text:
        return "is empty; set the image to pull"
    if len(text) > _MAX_REFERENCE:
        return f"is {len(text)} characters long; an image reference is at most {_MAX_REFERENCE}"
    rest, at, digest = text.partition("@")
    if at and not digest:
        return "ends with @ but no digest follows; write @sha256:<64 hex digits> or remove the @"
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, remainder
        if not _HOST.fullmatch(registry):
            return f"starts with {_show(registry)}, which is not a registry host"
        registry = registry.lower()
    else:
        registry, path = DOCKER_HUB, rest
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG.fullmatch(tag):
            return (
                f"has the tag {_show(tag)}, which is not valid: use letters, digits, _, . and -, "
                "at most 128 characters"
            )
    if registry == _LEGACY_DOCKER_HUB:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"{_OFFICIAL_NAMESPACE}/{path}"
    for segment in path.split("/"):
        if not _SEGMENT.fullmatch(segment):
            return (
                f"has the path segment {_show(segment)}, which is not valid: image names use "
                "lowercase letters, digits and single separators (., _, __, -)"
            )
    return ImageRef(registry=registry, repository=path, tag=tag, digest=digest or None)


def digest_problem(digest: str | None) -> str | None:
    """Why `digest` does not pin an image (absent or malformed), or None when it does."""
    if digest is None:
        return "is not pinned by digest"
    algorithm, colon, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if not colon or length is None:
        return (
            f"has the digest {_show(digest)}, whose algorithm is not one registries serve "
            f"({', '.join(_DIGEST_HEX_LENGTHS)})"
        )
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        return (
            f"has the digest {_show(digest)}, which is not {length} lowercase hex digits "
            f"after {algorithm}:"
        )
    return None


@lru_cache(maxsize=1024)
def _entry_parts(entry: str) -> tuple[str, str]:
    host, _, path = entry.partition("/")
    host = host.lower()
    if host == _LEGACY_DOCKER_HUB:
        host = DOCKER_HUB
    return host, path


def registry_allows(image: ImageRef, entries: Sequence[str]) -> bool:
    """Whether one of the allow-list `entries` (host or host/path prefix) admits `image`."""
    for entry in entries:
        host, path = _entry_parts(entry)
        if image.registry != host:
            continue
        if not path or image.repository == path or image.repository.startswith(path + "/"):
            return True
    return False


def _show(text: str) -> str:
    """A user-supplied string in a message: quoted, escaped and cut short."""
    shown = text if len(text) <= 80 else text[:79] + "…"
    return json.dumps(shown.encode("utf-8", "backslashreplace").decode("utf-8"), ensure_ascii=False)
