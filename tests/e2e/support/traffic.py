"""Everything a page sends, recorded for the tests that prove a secret never leaves it: request
URLs, Referer headers and bodies, WebSocket URLs and frames, and console lines."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Page


@dataclass
class Traffic:
    urls: list[str] = field(default_factory=list)
    referers: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    socket_urls: list[str] = field(default_factory=list)
    socket_frames: list[bytes] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def record(self, page: Page) -> None:
        """Starts recording; call it before the page loads anything."""

        def on_request(request: object) -> None:
            self.urls.append(request.url)  # type: ignore[attr-defined]
            headers = request.headers  # type: ignore[attr-defined]
            if "referer" in headers:
                self.referers.append(headers["referer"])
            body = request.post_data_buffer  # type: ignore[attr-defined]
            if body:
                self.bodies.append(body)

        def on_socket(socket: object) -> None:
            self.socket_urls.append(socket.url)  # type: ignore[attr-defined]

            def on_frame(payload: str | bytes) -> None:
                self.socket_frames.append(payload.encode() if isinstance(payload, str) else payload)

            socket.on("framesent", on_frame)  # type: ignore[attr-defined]

        page.on("request", on_request)
        page.on("websocket", on_socket)
        page.on("console", lambda message: self.console.append(message.text))  # type: ignore[attr-defined]

    def leaks(self, secret_b64url: str) -> list[str]:
        """Where the secret (a base64url string, as in a link) shows up: empty when nowhere.
        Looks for it as written, in standard base64, and as raw bytes (binary frames)."""
        padded = secret_b64url + "=" * (-len(secret_b64url) % 4)
        raw = base64.urlsafe_b64decode(padded)
        needles_text = {secret_b64url, base64.b64encode(raw).decode().rstrip("=")}
        needles_bytes = {n.encode() for n in needles_text} | {raw}
        found = []
        for kind, texts in (
            ("url", self.urls),
            ("referer", self.referers),
            ("websocket url", self.socket_urls),
            ("console", self.console),
        ):
            found += [f"{kind}: {text[:200]}" for text in texts if any(n in text for n in needles_text)]
        for kind, blobs in (("request body", self.bodies), ("websocket frame", self.socket_frames)):
            found += [f"{kind}: {blob[:200]!r}" for blob in blobs if any(n in blob for n in needles_bytes)]
        return found
