"""Reading an HTTP body with a ceiling, for the webhook's and the gateway's servers alike.

Both servers must never hold more than a set number of bytes of a body they did not ask for: an
AdmissionReview larger than the webhook accepts, a prompt larger than the workload allows, a
provider answer larger than the gateway inspects. A declared `Content-Length` over the cap refuses
at once, unread; otherwise the cap applies to the bytes as they arrive, after aiohttp has undone
any `Content-Encoding`, so a small compressed body cannot expand past it.
"""

from __future__ import annotations

from aiohttp import StreamReader


async def read_capped(content: StreamReader, declared_length: int | None, cap: int) -> bytes | None:
    """The whole body from `content`, or None as soon as it is known to exceed `cap` bytes."""
    if declared_length is not None and declared_length > cap:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
        size += len(chunk)
        if size > cap:
            return None
        parts.append(chunk)
    return b"".join(parts)
