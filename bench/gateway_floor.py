"""The floor a Python gateway cannot go below: a bare aiohttp pass-through, for bench/gateway.py.

What every Python LLM proxy does at the least, and nothing more: parse the JSON request with
orjson, swap the app's key for its own, send it on through one pooled aiohttp client session,
parse the JSON answer (or relay the event stream chunk by chunk) and send it back. No policy, no
guardrails, no audit log, no metrics. aigis's cost above this floor is the cost of what it does
for security; the floor's cost above direct calls is what aiohttp and the extra hop cost.

Run: `python bench/gateway_floor.py --listen 127.0.0.1:PORT --upstream http://127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse

import aiohttp
import orjson
from aiohttp import web

UPSTREAM_KEY = "sk-bench-upstream-key"


def make_handler(upstream: str, state: dict[str, aiohttp.ClientSession]) -> web.Server:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        session = state["session"]
        body = orjson.loads(await request.read())
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {UPSTREAM_KEY}"}
        async with session.post(
            upstream + request.path, data=orjson.dumps(body), headers=headers
        ) as answer:
            if answer.content_type == "text/event-stream":
                response = web.StreamResponse(
                    status=answer.status, headers={"Content-Type": "text/event-stream"}
                )
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
            payload = orjson.loads(await answer.read())
            return web.Response(
                body=orjson.dumps(payload), status=answer.status, content_type="application/json"
            )

    return web.Server(handle, access_log=None)


async def serve(host: str, port: int, upstream: str) -> None:
    import asyncio

    state: dict[str, aiohttp.ClientSession] = {}
    state["session"] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=0)
    )
    runner = web.ServerRunner(make_handler(upstream, state), handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await state["session"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of the provider")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    import uvloop

    uvloop.run(serve(host, int(port), args.upstream.rstrip("/")))


if __name__ == "__main__":
    main()
