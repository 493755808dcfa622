"""`make run`: the whole stack in the foreground; Ctrl-C stops everything it started.

REPLICAS=N (environment, default 1) runs N processes each of rooms, chat and media-token
behind the gateway's load balancer. A process that dies is restarted (supervise)."""

import os
import signal
import sys
import threading

from veche.local.infra import LocalInfra, ensure_database, is_local_livekit, migrate
from veche.local.stack import ROOT, SCALED, Stack, healthy, port_open
from veche.rooms.settings import RoomsSettings


def main() -> int:
    # A local run on this machine: the development key pair and internal token are fine (every
    # process started from here inherits this).
    os.environ.setdefault("DEV_MODE", "true")
    settings = RoomsSettings()  # every URL and key a local run needs
    gateway_port = int(os.environ.get("GATEWAY_PORT", "8080"))
    url = f"http://127.0.0.1:{gateway_port}"
    if port_open("127.0.0.1", gateway_port):
        if healthy(f"{url}/_/rooms/healthz"):
            print(f"veche is already running at {url} (another `make run`); nothing to do.")
            return 0
        print(f"port {gateway_port} is taken by another program; set GATEWAY_PORT to another.")
        return 1
    run_dir = ROOT / ".run"
    infra = LocalInfra(run_dir)
    replicas = int(os.environ.get("REPLICAS", "1"))
    if replicas < 1:
        print("REPLICAS must be 1 or more.")
        return 1
    stack = Stack(
        run_dir=run_dir / "logs",
        env={},
        gateway_port=gateway_port,
        replicas={name: replicas for name in SCALED},
    )
    stopping = threading.Event()
    # Installed explicitly: a shell that starts us in the background may have SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        infra.postgres(settings.database_url)
        infra.redis(settings.redis_url)
        infra.nats(settings.nats_url)
        if is_local_livekit(settings.livekit_url):
            infra.livekit(
                settings.livekit_url,
                api_key=settings.livekit_api_key,
                api_secret=settings.livekit_api_secret,
                webhook_url=f"{url}/api/v1/livekit/webhook",
            )
        ensure_database(settings.database_url)
        migrate(settings.database_url)
        stack.start()
        print(
            f"\nveche is up: {url}\n"
            f"  {replicas} replica(s) each of {', '.join(SCALED)}; a process that dies is restarted"
            " (after 0.5 s, doubling per crash up to 30 s)\n"
            f"  logs in {stack.run_dir}\n  Ctrl-C stops it.\n",
            flush=True,
        )
        while not stopping.wait(0.25):
            stack.supervise(lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping …", flush=True)
        stack.stop()
        infra.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
