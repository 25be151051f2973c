"""Load a local HTML file in real headless Chromium and report what the browser saw.

Debian's `chromium` is started as the tests run it (as root, so `--no-sandbox`), with its own
profile directory, every background service that would reach the network turned off, and a
host-resolver rule that resolves no name at all: the only thing it loads is the file:// URL.
It is driven over the DevTools protocol on 127.0.0.1 (`--remote-debugging-port=0`; the port is
read from the profile's DevToolsActivePort file) with an aiohttp websocket: console messages,
uncaught exceptions and log entries of level error are collected, every request is recorded,
the page is measured with a few DOM queries, and a PNG screenshot of a fixed viewport is taken.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import shutil
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "Chromium is needed to check the HTML report in a real browser: install Debian's chromium "
    "(apt-get install chromium) so that /usr/bin/chromium exists"
)
START_TIMEOUT_SECONDS = 60.0
LOAD_TIMEOUT_SECONDS = 60.0
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-pings",
    "--disable-features=OptimizationHints,MediaRouter,Translate,NetworkTimeServiceQuerying",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str:
    """The Chromium binary; AssertionError with how to install it when there is none."""
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    assert found, INSTALL_HINT
    return found


@dataclass
class PageResult:
    """What the browser reported while loading and rendering one page."""

    errors: list[str] = field(default_factory=list)
    """Console errors, uncaught exceptions and error log entries."""
    requests: list[str] = field(default_factory=list)
    """Every URL the page requested."""
    facts: dict[str, Any] = field(default_factory=dict)
    """The value of each DOM query asked for."""
    screenshot: bytes = b""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; AssertionError when it is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def png_distinct_bytes(data: bytes) -> int:
    """How many distinct byte values the PNG's (decompressed) image data holds: a blank page
    holds a handful, a rendered report hundreds."""
    position = 8
    compressed = b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            compressed += data[position + 8 : position + 8 + length]
        position += 12 + length
    return len(set(zlib.decompress(compressed)))


def render_page(
    html_file: Path,
    profile: Path,
    *,
    width: int,
    height: int,
    queries: dict[str, str] | None = None,
) -> PageResult:
    """Load `html_file` in headless Chromium with a fresh profile under `profile`."""
    binary = chromium_binary()
    profile.mkdir(parents=True, exist_ok=True)
    log = (profile / "chromium.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        endpoint = _devtools_endpoint(profile, process)
        return asyncio.run(_drive(endpoint, html_file, width, height, queries or {}))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _devtools_endpoint(profile: Path, process: subprocess.Popen[bytes]) -> str:
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, (profile / "chromium.log").read_text(errors="replace")
        if active.is_file():
            lines = active.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        time.sleep(0.1)
    raise AssertionError(f"Chromium wrote no {active} within {START_TIMEOUT_SECONDS:.0f}s")


class _Session:
    """One flat DevTools session over the browser websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, result: PageResult) -> None:
        self.ws = ws
        self.result = result
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.session_id: str | None = None

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if self.session_id is not None and not method.startswith("Target."):
            message["sessionId"] = self.session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.ws.send_json(message)
        return await asyncio.wait_for(future, LOAD_TIMEOUT_SECONDS)

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def pump(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = frame.json()
            if "id" in message and message["id"] in self.pending:
                future = self.pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(AssertionError(f"DevTools: {message['error']}"))
                else:
                    future.set_result(message.get("result") or {})
                continue
            self._on_event(message.get("method", ""), message.get("params") or {})

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            shown = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.result.errors.append(f"console.{params['type']}: {shown}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            exception = details.get("exception") or {}
            self.result.errors.append(
                f"exception: {exception.get('description') or details.get('text')}"
            )
        elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
            entry = params["entry"]
            self.result.errors.append(f"log ({entry.get('source')}): {entry.get('text')}")
        elif method == "Network.requestWillBeSent":
            self.result.requests.append(str(params["request"]["url"]))
        self.event(method).set()


async def _drive(
    endpoint: str, html_file: Path, width: int, height: int, queries: dict[str, str]
) -> PageResult:
    result = PageResult()
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.ws_connect(endpoint, max_msg_size=64 * 1024 * 1024) as ws,
    ):
        session = _Session(ws, result)
        pump = asyncio.create_task(session.pump())
        try:
            target = await session.call("Target.createTarget", url="about:blank")
            attached = await session.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            session.session_id = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                await session.call(f"{domain}.enable")
            await session.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            loaded = session.event("Page.loadEventFired")
            loaded.clear()
            await session.call("Page.navigate", url=html_file.resolve().as_uri())
            await asyncio.wait_for(loaded.wait(), LOAD_TIMEOUT_SECONDS)
            for name, expression in queries.items():
                answer = await session.call(
                    "Runtime.evaluate", expression=expression, returnByValue=True
                )
                result.facts[name] = (answer.get("result") or {}).get("value")
            shot = await session.call("Page.captureScreenshot", format="png")
            result.screenshot = base64.b64decode(shot["data"])
            # Let late console messages and log entries arrive before judging the page.
            await asyncio.sleep(0.5)
        finally:
            pump.cancel()
    return result
