"""The real LiveKit server of a test run: started by the same code as `make run`'s
(`infra.LocalInfra.livekit`), on ports of its own, with its webhooks going to the run's gateway."""

import random
from dataclasses import dataclass, field
from pathlib import Path

from livekit import api as lk

from veche.common.settings import LiveKitSettings
from veche.local.infra import LocalInfra
from veche.local.stack import free_port


@dataclass
class LiveKitServer:
    run_dir: Path
    port: int
    webhook_url: str
    tcp_port: int = field(default_factory=free_port)
    # A small range of its own, so a test run beside `make run` never shares one.
    udp_ports: tuple[int, int] = field(
        default_factory=lambda: (lambda base: (base, base + 59))(random.randrange(40000, 49000, 60))
    )
    api_key: str = field(default_factory=lambda: LiveKitSettings().livekit_api_key)
    api_secret: str = field(default_factory=lambda: LiveKitSettings().livekit_api_secret)

    def __post_init__(self) -> None:
        self.infra = LocalInfra(self.run_dir)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        started = self.infra.livekit(
            self.url,
            api_key=self.api_key,
            api_secret=self.api_secret,
            webhook_url=self.webhook_url,
            tcp_port=self.tcp_port,
            udp_ports=self.udp_ports,
        )
        assert started, f"something already listens on {self.url}"

    def stop(self) -> None:
        self.infra.stop_child("livekit")

    def kill(self) -> None:
        """Ends the server at once, as a crash would (no webhooks, every room forgotten)."""
        child = self.infra.named.pop("livekit", None)
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    def api(self) -> lk.LiveKitAPI:
        return lk.LiveKitAPI(self.http_url, self.api_key, self.api_secret)

    def token(self, identity: str, room: str) -> str:
        """A token signed with the server's own key pair, as only the platform could make."""
        grants = lk.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
        return (
            lk.AccessToken(self.api_key, self.api_secret).with_identity(identity).with_grants(grants).to_jwt()
        )

    def log(self) -> str:
        path = self.run_dir / "livekit.log"
        return path.read_text(errors="replace") if path.exists() else ""
