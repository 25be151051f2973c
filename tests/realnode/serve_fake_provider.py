"""Run tests/support's fake provider over TLS on 0.0.0.0:PORT until killed (started inside
a test host's own network namespace by the realnode fixtures, so 0.0.0.0 is only that namespace)."""

from __future__ import annotations

import asyncio
import ssl
import sys

from tests.support.fake_provider import FakeProvider


async def serve(port: int, text: str, cert: str, key: str) -> None:
    provider = FakeProvider()
    provider.behaviour.text = text
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    # 0.0.0.0 of a private network namespace: only the node's namespace reaches it.
    await provider.start(host="0.0.0.0", port=port, ssl_context=tls)  # noqa: S104
    print(f"serving on {provider.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))
