"""Renders the Traefik v3 static and dynamic (file provider) configuration of the gateway.

This module is the one source of the gateway's routes: `make run` and the e2e tests render it
into a run folder with their own ports; deploy/traefik/generate.py renders the compose files
and the Kubernetes IngressRoute from it (`make lint` checks they are current)."""

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("rooms", "chat", "media-token", "janitor", "web")
# Where the web process serves the gateway's problem+json for an upstream nobody could answer.
ERROR_PAGE = "/_/errors/{status}"


@dataclass
class GatewayConfig:
    port: int = 8080
    upstreams: dict[str, list[str]] = field(
        default_factory=lambda: {
            "rooms": ["http://127.0.0.1:8001"],
            "chat": ["http://127.0.0.1:8002"],
            "media-token": ["http://127.0.0.1:8003"],
            "janitor": ["http://127.0.0.1:8004"],
            "web": ["http://127.0.0.1:8005"],
        }
    )
    trusted_proxies: list[str] = field(default_factory=list)
    rate_average: int = 100
    rate_burst: int = 200
    access_log: bool = False
    # Where Traefik sends its spans (OTLP/HTTP, the full .../v1/traces URL); empty: no tracing.
    # Traefik continues an incoming W3C traceparent and passes its own on to the services.
    otlp_traces_endpoint: str = ""


def _yaml(value: object) -> str:
    # JSON is valid YAML; Traefik's file provider reads either.
    return json.dumps(value, indent=2)


def static_config(cfg: GatewayConfig, dynamic_path: Path) -> dict[str, object]:
    entry: dict[str, object] = {
        "address": f"127.0.0.1:{cfg.port}",
        # Client-sent X-Forwarded-For / X-Real-IP are only kept from these proxies; everyone
        # else gets the address Traefik saw, so no client can choose its own address.
        "forwardedHeaders": {"trustedIPs": cfg.trusted_proxies, "insecure": False},
        "transport": {"respondingTimeouts": {"readTimeout": "30s", "idleTimeout": "180s"}},
    }
    static: dict[str, object] = {
        "entryPoints": {"web": entry},
        "providers": {"file": {"filename": str(dynamic_path), "watch": False}},
        "log": {"level": "WARN"},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
    }
    if cfg.access_log:
        static["accessLog"] = {"format": "json", "fields": {"headers": {"defaultMode": "drop"}}}
    if cfg.otlp_traces_endpoint:
        static["tracing"] = {
            "serviceName": "gateway",
            "otlp": {"http": {"endpoint": cfg.otlp_traces_endpoint}},
        }
    return static


def dynamic_config(cfg: GatewayConfig) -> dict[str, object]:
    routers: dict[str, object] = {}
    middlewares: dict[str, object] = {
        "per-address-limit": {
            "rateLimit": {"average": cfg.rate_average, "burst": cfg.rate_burst, "period": "1s"}
        },
        # A request that cannot even connect (a replica just died, before the health check
        # drops it) goes to the next replica: it never reached the first, so resending is safe.
        "retry-elsewhere": {"retry": {"attempts": 3, "initialInterval": "50ms"}},
        # Traefik's own answers when no replica could answer (502 unreachable, 503 none ready,
        # 504 timed out) become the contract's 503 problem+json with Retry-After, served by
        # the web process. The services' 429s (and any other status) pass untouched.
        "upstream-unavailable": {
            "errors": {
                "status": ["502-504"],
                "statusRewrites": {"502-504": 503},
                "service": "web",
                "query": ERROR_PAGE,
            }
        },
    }
    services: dict[str, object] = {}
    for name in SERVICES:
        services[name] = {
            "loadBalancer": {
                "servers": [{"url": url} for url in cfg.upstreams[name]],
                "passHostHeader": True,
                # A replica that is not ready (dead, or cut off from what it needs) leaves the
                # rotation within about two seconds, and comes back once it is ready again.
                # When none is ready, the client gets upstream-unavailable's 503.
                "healthCheck": {"path": "/readyz", "interval": "1s", "timeout": "1s"},
            }
        }
    api_mw = ["per-address-limit", "upstream-unavailable", "retry-elsewhere"]
    routers["chat"] = {
        "rule": "PathRegexp(`^/api/v1/rooms/[^/]+/chat(/|$)`) || PathPrefix(`/ws/chat/`)",
        "service": "chat",
        "priority": 300,
        "middlewares": api_mw,
    }
    routers["media-token"] = {
        "rule": "PathRegexp(`^/api/v1/rooms/[^/]+/media(/|$)`)",
        "service": "media-token",
        "priority": 300,
        "middlewares": api_mw,
    }
    routers["rooms"] = {
        "rule": "Path(`/api/v1/rooms`) || PathPrefix(`/api/v1/rooms/`) || Path(`/api/v1/livekit/webhook`)",
        "service": "rooms",
        "priority": 200,
        "middlewares": api_mw,
    }
    # Any other API or socket path is a problem+json 404 from rooms, never the web client's page
    # or Traefik's plain text.
    routers["api-unknown"] = {
        "rule": "PathPrefix(`/api/`) || PathPrefix(`/ws/`)",
        "service": "rooms",
        "priority": 100,
        "middlewares": api_mw,
    }
    for name in SERVICES:
        strip = f"strip-{name}"
        middlewares[strip] = {"stripPrefix": {"prefixes": [f"/_/{name}"]}}
        routers[f"health-{name}"] = {
            "rule": f"PathRegexp(`^/_/{name}/(healthz|readyz|metrics)$`)",
            "service": name,
            "priority": 400,
            "middlewares": [strip],
        }
    routers["web"] = {
        "rule": "PathPrefix(`/`)",
        "service": "web",
        "priority": 1,
        "middlewares": api_mw,
    }
    return {"http": {"routers": routers, "middlewares": middlewares, "services": services}}


def render(cfg: GatewayConfig, folder: Path) -> Path:
    """Writes traefik.yml and dynamic.yml into folder; returns the static config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    dynamic_path = folder / "dynamic.yml"
    static_path = folder / "traefik.yml"
    dynamic_path.write_text(_yaml(dynamic_config(cfg)) + "\n")
    static_path.write_text(_yaml(static_config(cfg, dynamic_path)) + "\n")
    return static_path


def from_env() -> GatewayConfig:
    cfg = GatewayConfig()
    cfg.port = int(os.environ.get("GATEWAY_PORT", cfg.port))
    proxies = os.environ.get("TRUSTED_PROXIES", "")
    cfg.trusted_proxies = [p.strip() for p in proxies.split(",") if p.strip()]
    cfg.rate_average = int(os.environ.get("GATEWAY_RATE_AVERAGE", cfg.rate_average))
    cfg.rate_burst = int(os.environ.get("GATEWAY_RATE_BURST", cfg.rate_burst))
    cfg.otlp_traces_endpoint = otlp_traces_endpoint(os.environ)
    return cfg


def otlp_traces_endpoint(env: Mapping[str, str]) -> str:
    """The services' rule (veche.common.tracing): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is,
    else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; empty when neither is set."""
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        return ""
    return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or base.rstrip("/") + "/v1/traces"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    print(render(from_env(), args.folder))
