"""deploy/compose.yaml and deploy/compose.tls.yaml, checked offline (no Docker engine here):
compose's own interpolation rules applied by hand, then the LiveKit service's config read as
LiveKit would. (`make lint` also runs Compose v2 itself on both files: veche.local.check_compose.)"""

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
TLS = DEPLOY / "compose.tls.yaml"
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")
SECRET = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY)$")
STATELESS = ("rooms", "chat", "media-token")


def interpolate(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return VAR.sub(one, text)


class Loader(yaml.SafeLoader):
    """compose's merge tags (!override, !reset) kept as a marker on the value."""


class Override(list[Any]):
    pass


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    assert isinstance(node, yaml.SequenceNode)
    return Override(loader.construct_sequence(node))


Loader.add_constructor("!override", _override)


def load(path: Path, env: dict[str, str]) -> dict[str, Any]:
    return yaml.load(interpolate(path.read_text(), env), Loader=Loader)


def values(path: Path) -> list[str]:
    def walk(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for item in value.values() for s in walk(item)]
        if isinstance(value, list):
            return [s for item in value for s in walk(item)]
        return [value] if isinstance(value, str) else []

    return walk(yaml.load(path.read_text(), Loader=Loader))


ENV = {
    "LIVEKIT_API_KEY": "APIabc",
    "LIVEKIT_API_SECRET": "s" * 40,
    "INTERNAL_API_TOKEN": "t" * 40,
    "NATS_ROOMS_PASSWORD": "r",
    "NATS_CHAT_PASSWORD": "c",
    "NATS_MEDIA_TOKEN_PASSWORD": "m",
    "NATS_JANITOR_PASSWORD": "j",
    "POSTGRES_PASSWORD": "p",
}
TLS_ENV = {
    **ENV,
    "VECHE_DOMAIN": "meet.example.com",
    "ACME_EMAIL": "ops@example.com",
    "NODE_IP": "203.0.113.10",
    "LIVEKIT_BIND": "0.0.0.0",
}


def test_compose_refuses_to_start_without_any_secret():
    text = COMPOSE.read_text()
    for missing in ENV:
        env = {k: v for k, v in ENV.items() if k != missing}
        with pytest.raises(KeyError, match=missing):
            load(COMPOSE, env)
    assert "devkey" not in text and ":-secret" not in text


def test_no_secret_has_a_default_and_every_use_requires_it():
    for path in (COMPOSE, TLS):
        uses = [(name, op) for value in values(path) for name, op, _ in VAR.findall(value)]
        if path == COMPOSE:
            secrets = {name for name, _ in uses if SECRET.search(name)}
            assert secrets >= {
                "LIVEKIT_API_KEY",
                "LIVEKIT_API_SECRET",
                "INTERNAL_API_TOKEN",
                "POSTGRES_PASSWORD",
            }
        for name, op in uses:
            if SECRET.search(name):
                assert op == ":?", f"{path.name}: ${{{name}{op}…}} must be ${{{name}:?…}}"


def test_the_top_of_the_file_says_compose_v2_is_required():
    head = COMPOSE.read_text()[:600]
    assert "Compose v2" in head and "v1" in head and "deploy.replicas" in head
    assert "Compose v2" in TLS.read_text()[:600]


def test_livekit_config_and_keys_come_from_the_environment_with_auto_create_off_and_turn():
    compose = load(COMPOSE, ENV)
    livekit = compose["services"]["livekit"]
    assert not livekit.get("command") and not any("livekit.yaml" in v for v in livekit.get("volumes", []))
    assert yaml.safe_load(livekit["environment"]["LIVEKIT_KEYS"]) == {"APIabc": "s" * 40}
    config = yaml.safe_load(livekit["environment"]["LIVEKIT_CONFIG"])
    assert "keys" not in config
    assert config["room"]["auto_create"] is False
    assert config["webhook"] == {"api_key": "APIabc", "urls": ["http://rooms:8001/api/v1/livekit/webhook"]}
    assert config["turn"]["enabled"] is False and config["turn"]["tls_port"] == 5349
    rtc = config["rtc"]
    assert rtc["tcp_port"] == 7881
    assert rtc["port_range_end"] - rtc["port_range_start"] + 1 >= 200
    assert rtc["node_ip"] == "127.0.0.1"
    turned_on = load(
        COMPOSE,
        {**ENV, "LIVEKIT_TURN_ENABLED": "true", "LIVEKIT_TURN_DOMAIN": "turn.example.com"},
    )["services"]["livekit"]
    turn = yaml.safe_load(turned_on["environment"]["LIVEKIT_CONFIG"])["turn"]
    assert turn["enabled"] is True and turn["domain"] == "turn.example.com"
    assert "./turn:/etc/livekit-turn:ro" in turned_on["volumes"]


def test_livekit_ports_are_on_livekit_bind_loopback_by_default_and_follow_the_variables():
    raw = yaml.load(COMPOSE.read_text(), Loader=Loader)["services"]["livekit"]["ports"]
    assert raw and all(port.startswith("${LIVEKIT_BIND:-127.0.0.1}:") for port in raw)
    ports = load(COMPOSE, ENV)["services"]["livekit"]["ports"]
    assert "127.0.0.1:7880:7880" in ports
    assert "127.0.0.1:7881:7881" in ports
    assert "127.0.0.1:50000-50199:50000-50199/udp" in ports
    moved = load(
        COMPOSE,
        {
            **ENV,
            "LIVEKIT_BIND": "192.0.2.7",
            "LIVEKIT_TCP_PORT": "7991",
            "LIVEKIT_UDP_START": "40000",
            "LIVEKIT_UDP_END": "40399",
        },
    )["services"]["livekit"]
    assert "192.0.2.7:7880:7880" in moved["ports"]
    assert "192.0.2.7:7991:7991" in moved["ports"]
    assert "192.0.2.7:40000-40399:40000-40399/udp" in moved["ports"]
    rtc = yaml.safe_load(moved["environment"]["LIVEKIT_CONFIG"])["rtc"]
    assert (rtc["tcp_port"], rtc["port_range_start"], rtc["port_range_end"]) == (7991, 40000, 40399)


def test_nothing_is_published_beyond_this_host_by_default():
    for name, service in load(COMPOSE, ENV)["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_every_service_that_talks_to_livekit_gets_the_same_key_pair():
    compose = load(COMPOSE, ENV)
    for name in ("rooms", "media-token"):
        env = compose["services"][name]["environment"]
        assert (env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) == ("APIabc", "s" * 40)
        assert env["LIVEKIT_API_URL"] == "http://livekit:7880"


def test_each_service_has_its_own_nats_user_and_the_internal_credential():
    compose = load(COMPOSE, ENV)
    users = {}
    for name in ("rooms", "chat", "media-token", "janitor"):
        env = compose["services"][name]["environment"]
        users[name] = (env["NATS_USER"], env["NATS_PASSWORD"])
        assert env["INTERNAL_API_TOKEN"] == "t" * 40
    assert users == {
        "rooms": ("rooms", "r"),
        "chat": ("chat", "c"),
        "media-token": ("media-token", "m"),
        "janitor": ("janitor", "j"),
    }
    nats = compose["services"]["nats"]
    assert nats["command"][:3] == ["nats-server", "-c", "/etc/nats/nats.conf"]
    assert set(nats["environment"]) == {k for k in ENV if k.startswith("NATS_")}


def test_redis_keeps_its_data_and_a_memory_bound_without_silent_eviction():
    command = load(COMPOSE, ENV)["services"]["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--appendonly"] == "yes" and options["--appendfsync"] == "everysec"
    assert options["--maxmemory"] == "512mb" and options["--maxmemory-policy"] == "noeviction"


def test_redis_nats_and_postgres_keep_their_data_on_named_volumes():
    compose = load(COMPOSE, ENV)
    expected = {
        "redis": "redis-data:/data",
        "nats": "nats-data:/data",
        "postgres": "postgres-data:/var/lib/postgresql/data",
    }
    for service, mount in expected.items():
        assert mount in compose["services"][service]["volumes"]
        assert mount.split(":")[0] in compose["volumes"]
    assert "-sd" in compose["services"]["nats"]["command"]
    env = compose["services"]["postgres"]["environment"]
    assert env["POSTGRES_PASSWORD"] == "p"


def test_the_stateless_services_run_replicas_from_variables():
    raw = yaml.load(COMPOSE.read_text(), Loader=Loader)["services"]
    compose = load(COMPOSE, ENV)
    scaled = load(COMPOSE, {**ENV, "ROOMS_REPLICAS": "3", "CHAT_REPLICAS": "4", "MEDIA_TOKEN_REPLICAS": "5"})
    for name, count in zip(STATELESS, (3, 4, 5), strict=True):
        variable = f"{name.upper().replace('-', '_')}_REPLICAS"
        assert raw[name]["deploy"]["replicas"] == f"${{{variable}:-2}}"
        assert compose["services"][name]["deploy"]["replicas"] == 2
        assert scaled["services"][name]["deploy"]["replicas"] == count
        # Replicas share one name: nothing may pin a container name or a host port.
        assert "container_name" not in raw[name] and "ports" not in raw[name]


def test_the_services_believe_forwarded_addresses_from_the_gateway_container_only():
    compose = load(COMPOSE, ENV)
    gateway_ip = compose["services"]["traefik"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]

    assert ipaddress.ip_address(gateway_ip) in ipaddress.ip_network(subnet)
    for name in ("rooms", "chat", "media-token", "janitor"):
        env = compose["services"][name]["environment"]
        assert json.loads(env["GATEWAY_ADDRESSES"]) == [f"{gateway_ip}/32"]


def test_plain_http_on_the_configured_port_when_tls_is_not_on():
    traefik = load(COMPOSE, ENV)["services"]["traefik"]
    assert traefik["ports"] == ["127.0.0.1:8080:8080"]
    assert traefik["command"] == ["--configFile=/etc/traefik/traefik.yml"]
    assert "./traefik/traefik.yml:/etc/traefik/traefik.yml:ro" in traefik["volumes"]
    exposed = load(COMPOSE, {**ENV, "GATEWAY_BIND": "0.0.0.0", "GATEWAY_PORT": "80"})["services"]["traefik"]
    assert exposed["ports"] == ["0.0.0.0:80:8080"]


def test_tls_is_switched_on_by_the_domain():
    with pytest.raises(KeyError, match="VECHE_DOMAIN"):
        load(TLS, {k: v for k, v in TLS_ENV.items() if k != "VECHE_DOMAIN"})
    for missing in ("ACME_EMAIL", "NODE_IP", "LIVEKIT_BIND"):
        with pytest.raises(KeyError, match=missing):
            load(TLS, {k: v for k, v in TLS_ENV.items() if k != missing})
    tls = load(TLS, TLS_ENV)["services"]
    traefik = tls["traefik"]
    flags = dict(flag.removeprefix("--").split("=", 1) for flag in traefik["command"])
    assert flags["entryPoints.web.address"] == ":80"
    assert flags["entryPoints.web.http.redirections.entryPoint.to"] == "websecure"
    assert flags["entryPoints.web.http.redirections.entryPoint.scheme"] == "https"
    assert flags["entryPoints.websecure.address"] == ":443"
    assert flags["entryPoints.websecure.http.tls.certResolver"] == "letsencrypt"
    assert flags["entryPoints.websecure.http.tls.domains[0].main"] == "meet.example.com"
    assert flags["certificatesResolvers.letsencrypt.acme.email"] == "ops@example.com"
    assert flags["certificatesResolvers.letsencrypt.acme.storage"] == "/acme/acme.json"
    assert flags["certificatesResolvers.letsencrypt.acme.tlsChallenge"] == "true"
    assert "configFile" not in flags
    # The overlay replaces the plain file's ports and mounts (merged, they would add to them),
    # and mounts no static file: Traefik reads a file, or flags, never both.
    assert isinstance(traefik["ports"], Override) and traefik["ports"] == ["80:80", "443:443"]
    assert isinstance(traefik["volumes"], Override)
    assert not any(v.split(":")[1].startswith("/etc/traefik/traefik.") for v in traefik["volumes"])
    assert "traefik-acme:/acme" in traefik["volumes"]
    assert "traefik-acme" in load(TLS, TLS_ENV)["volumes"]
    # The plain file's health check reaches the unpublished internal entry point.
    plain = load(COMPOSE, ENV)["services"]["traefik"]
    assert flags["entryPoints.internal.address"] == ":8080"
    assert "http://127.0.0.1:8080/_/rooms/healthz" in plain["healthcheck"]["test"]
    # Browsers get LiveKit on the same name, through the gateway.
    for name in ("rooms", "media-token", "web"):
        assert tls[name]["environment"]["LIVEKIT_URL"] == "wss://meet.example.com"
    for name in ("rooms", "chat", "media-token"):
        assert json.loads(tls[name]["environment"]["CORS_ORIGINS"]) == ["https://meet.example.com"]
    livekit = tls["livekit"]
    assert livekit["environment"]["NODE_IP"] == "203.0.113.10"
    assert livekit["environment"]["LIVEKIT_TURN_EXTERNAL_TLS"] == "true"
    assert isinstance(livekit["ports"], Override)
    assert "127.0.0.1:7880:7880" in livekit["ports"]
    assert "0.0.0.0:50000-50199:50000-50199/udp" in livekit["ports"]


def test_the_tls_entry_point_keeps_the_generated_gateway_settings():
    # deploy/traefik/traefik.yml is generated from the gateway's config; the TLS variant gives
    # the same entry point settings as flags. A change there must reach compose.tls.yaml.
    static = yaml.safe_load((DEPLOY / "traefik" / "traefik.yml").read_text())
    flags = set(load(TLS, TLS_ENV)["services"]["traefik"]["command"])

    def flatten(prefix: str, value: Any) -> list[str]:
        if isinstance(value, dict):
            return [f for key, item in value.items() for f in flatten(f"{prefix}.{key}", item)]
        if isinstance(value, list):
            return [f"{prefix}={','.join(value)}"] if value else []
        return [f"{prefix}={str(value).lower() if isinstance(value, bool) else value}"]

    entry = {k: v for k, v in static["entryPoints"]["web"].items() if k != "address"}
    expected = flatten("--entryPoints.websecure", entry)
    expected += flatten("--log", static["log"]) + flatten("--global", static["global"])
    expected += flatten("--providers.file", {"watch": static["providers"]["file"]["watch"]})
    if "accessLog" in static:
        expected += flatten("--accessLog", static["accessLog"])
    missing = [flag for flag in expected if flag not in flags]
    assert not missing, f"deploy/compose.tls.yaml lacks {missing}"


def test_the_tls_routes_send_livekit_signalling_and_turn_to_livekit():
    template = (DEPLOY / "compose" / "traefik-tls.yml").read_text()

    def render(turn: bool) -> dict[str, Any]:
        text = template.replace('{{ env "LIVEKIT_TURN_DOMAIN" }}', "turn.example.com")
        block = re.compile(r"\{\{- if .*?\}\}(.*?)\{\{- end \}\}", re.S)
        return yaml.safe_load(block.sub(lambda m: m.group(1) if turn else "", text))

    off = render(turn=False)
    router = off["http"]["routers"]["livekit"]
    assert router["rule"] == "Path(`/rtc`) || PathPrefix(`/rtc/`)"
    assert off["http"]["services"]["livekit"]["loadBalancer"]["servers"] == [{"url": "http://livekit:7880"}]
    assert "tcp" not in off
    dynamic = yaml.safe_load((DEPLOY / "traefik" / "dynamic.yml").read_text())
    assert set(router["middlewares"]) <= set(dynamic["http"]["middlewares"])
    # Higher than every generated route, so /rtc never reaches the web client.
    assert router["priority"] > max(r["priority"] for r in dynamic["http"]["routers"].values())
    on = render(turn=True)["tcp"]
    assert on["routers"]["livekit-turn"]["rule"] == "HostSNI(`turn.example.com`)"
    assert on["routers"]["livekit-turn"]["tls"] == {"certResolver": "letsencrypt"}
    assert on["services"]["livekit-turn"]["loadBalancer"]["servers"] == [{"address": "livekit:5349"}]
    tls = load(TLS, TLS_ENV)["services"]["traefik"]
    assert "./compose/traefik-tls.yml:/etc/traefik/dynamic/traefik-tls.yml:ro" in tls["volumes"]
    assert "./traefik/dynamic.yml:/etc/traefik/dynamic/dynamic.yml:ro" in tls["volumes"]


def test_the_env_example_names_every_required_variable_and_holds_no_secret():
    example = {}
    for line in (DEPLOY / "compose.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    for path in (COMPOSE, TLS):
        for value in values(path):
            for name, op, _ in VAR.findall(value):
                if op == ":?":
                    assert name in example, f"compose.env.example lacks {name}"
                    assert example[name] == "", f"compose.env.example fills in the required {name}"
    ignored = (DEPLOY / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
