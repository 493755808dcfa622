"""deploy/compose.yaml, checked offline (no Docker engine here): compose's own interpolation
rules applied by hand, then the LiveKit service's config read as LiveKit would."""

import json
import re
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
VAR = re.compile(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return VAR.sub(one, text)


ENV = {
    "LIVEKIT_API_KEY": "APIabc",
    "LIVEKIT_API_SECRET": "s" * 40,
    "INTERNAL_API_TOKEN": "t" * 40,
    "NATS_ROOMS_PASSWORD": "r",
    "NATS_CHAT_PASSWORD": "c",
    "NATS_MEDIA_TOKEN_PASSWORD": "m",
    "NATS_JANITOR_PASSWORD": "j",
}


def test_compose_refuses_to_start_without_a_livekit_key_pair():
    text = COMPOSE.read_text()
    for missing in ENV:
        env = {k: v for k, v in ENV.items() if k != missing}
        with pytest.raises(KeyError, match=missing):
            interpolate(text, env)
    assert "devkey" not in text and ":-secret" not in text


def test_livekit_config_comes_from_the_environment_with_auto_create_off_and_turn():
    compose = yaml.safe_load(interpolate(COMPOSE.read_text(), ENV))
    livekit = compose["services"]["livekit"]
    config = yaml.safe_load(livekit["environment"]["LIVEKIT_CONFIG"])
    assert config["keys"] == {"APIabc": "s" * 40}
    assert config["room"]["auto_create"] is False
    assert config["webhook"] == {"api_key": "APIabc", "urls": ["http://rooms:8001/api/v1/livekit/webhook"]}
    assert config["turn"]["enabled"] is False and config["turn"]["tls_port"] == 5349
    rtc = config["rtc"]
    assert rtc["port_range_end"] - rtc["port_range_start"] + 1 >= 200
    assert f"{rtc['port_range_start']}-{rtc['port_range_end']}:" in " ".join(livekit["ports"])
    # Signalling binds to loopback unless configured otherwise.
    assert "127.0.0.1:7880:7880" in livekit["ports"]
    turned_on = yaml.safe_load(
        interpolate(
            COMPOSE.read_text(),
            {
                **ENV,
                "LIVEKIT_TURN_ENABLED": "true",
                "LIVEKIT_TURN_DOMAIN": "turn.example.com",
                "LIVEKIT_BIND": "0.0.0.0",
            },
        )
    )["services"]["livekit"]
    turn = yaml.safe_load(turned_on["environment"]["LIVEKIT_CONFIG"])["turn"]
    assert turn["enabled"] is True and turn["domain"] == "turn.example.com"
    assert "0.0.0.0:7880:7880" in turned_on["ports"]


def test_every_service_that_talks_to_livekit_gets_the_same_key_pair():
    compose = yaml.safe_load(interpolate(COMPOSE.read_text(), ENV))
    for name in ("rooms", "media-token"):
        env = compose["services"][name]["environment"]
        assert (env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) == ("APIabc", "s" * 40)
        assert env["LIVEKIT_API_URL"] == "http://livekit:7880"


def test_each_service_has_its_own_nats_user_and_the_internal_credential():
    compose = yaml.safe_load(interpolate(COMPOSE.read_text(), ENV))
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
    command = yaml.safe_load(interpolate(COMPOSE.read_text(), ENV))["services"]["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--appendonly"] == "yes" and options["--appendfsync"] == "everysec"
    assert options["--maxmemory"] == "512mb" and options["--maxmemory-policy"] == "noeviction"


def test_the_services_believe_forwarded_addresses_from_the_gateway_container_only():
    compose = yaml.safe_load(interpolate(COMPOSE.read_text(), ENV))
    gateway_ip = compose["services"]["traefik"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    import ipaddress

    assert ipaddress.ip_address(gateway_ip) in ipaddress.ip_network(subnet)
    for name in ("rooms", "chat", "media-token", "janitor"):
        env = compose["services"][name]["environment"]
        assert json.loads(env["GATEWAY_ADDRESSES"]) == [f"{gateway_ip}/32"]
