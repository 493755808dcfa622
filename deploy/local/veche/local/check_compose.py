"""Checks the Docker Compose deployment (deploy/compose.yaml, and with deploy/compose.tls.yaml)
with Docker Compose v2 itself, offline: `docker-compose config` needs no Docker engine.

    python -m veche.local.check_compose [--compose .bin/docker-compose]

`make lint` runs it (`make install` builds the binary from its Go module). Every run of compose
gets a clean environment (PATH and an empty DOCKER_CONFIG) and an env file written here, so
nothing of the caller's shell or of an operator's deploy/.env is read. It checks that

1. deploy/compose.env.example names every variable the two files require (`${NAME:?…}`);
2. the example, with its empty required values filled in with dummies, is accepted for the
   plain file and for the TLS variant, without a warning (compose warns about a variable that
   is used without a default and not set);
3. each required variable left unset makes `config` fail, naming it: the secrets (the LiveKit
   key pair, the internal token, the NATS and PostgreSQL passwords) for both files, and the
   TLS settings (the domain, the ACME e-mail, NODE_IP, LIVEKIT_BIND) for the TLS variant;
4. the configuration compose resolves says what the files promise: in the plain file every
   published port is on 127.0.0.1 by default; Redis runs with AOF (appendfsync everysec) on a
   named volume, as do NATS's JetStream store and PostgreSQL; rooms, chat and media-token have
   replicas from ROOMS_REPLICAS, CHAT_REPLICAS, MEDIA_TOKEN_REPLICAS; no secret has a
   default; LiveKit gets the key pair from the variables and no config file. With the TLS
   variant, the gateway listens on 80 and 443 with the ACME resolver for the domain, mounts no
   static config file (which would make Traefik ignore its flags), and the services hand
   browsers wss://<domain>.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from veche.local.stack import ROOT

DEPLOY = ROOT / "deploy"
PLAIN = DEPLOY / "compose.yaml"
TLS = DEPLOY / "compose.tls.yaml"
EXAMPLE = DEPLOY / "compose.env.example"
REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
USE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
# A variable by one of these names is a secret: required wherever it is used, never a default.
SECRET = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY)$")
# Stand-ins for required values that compose itself parses (addresses of published ports).
DUMMIES = {
    "LIVEKIT_API_KEY": "APIcheckcompose",
    "LIVEKIT_API_SECRET": "s" * 40,
    "VECHE_DOMAIN": "meet.example.com",
    "ACME_EMAIL": "ops@example.com",
    "NODE_IP": "203.0.113.10",
    "LIVEKIT_BIND": "0.0.0.0",
}
STATELESS = ("rooms", "chat", "media-token")


class _Loader(yaml.SafeLoader):
    """YAML with compose's merge tags (!override, !reset), read as plain values."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _untagged)


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def secret_defaults(path: Path) -> list[str]:
    """Uses of a secret variable that would run without it (a default, or no `:?`)."""
    values = strings(yaml.load(path.read_text(), Loader=_Loader))
    return [
        f"${{{name}{rest}}}"
        for value in values
        for name, rest in USE.findall(value)
        if SECRET.search(name) and not rest.startswith((":?", "?"))
    ]


def required(path: Path) -> list[str]:
    """The variables a compose file refuses to run without (`${NAME:?…}` in its values, not
    in its comments), in order of first use."""
    values = strings(yaml.load(path.read_text(), Loader=_Loader))
    return list(dict.fromkeys(name for value in values for name in REQUIRED.findall(value)))


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Compose:
    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.runs = 0

    def config(self, files: list[Path], env: dict[str, str], *args: str) -> Result:
        self.runs += 1
        env_file = self.workdir / f"run-{self.runs}.env"
        env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
        command = [str(self.binary), "--env-file", str(env_file)]
        for path in files:
            command += ["-f", str(path)]
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_CONFIG": str(self.workdir)}
        done = subprocess.run(
            [*command, "config", *args], env=clean, capture_output=True, text=True, check=False, timeout=60
        )
        return Result(done.returncode, done.stdout, done.stderr)


def check(compose: Compose) -> list[str]:
    problems: list[str] = []
    secrets = required(PLAIN)
    tls_only = [name for name in required(TLS) if name not in secrets]
    example = read_env_file(EXAMPLE)

    # 1. The example names every required variable.
    for name in secrets + tls_only:
        if name not in example:
            problems.append(f"{EXAMPLE.name} does not name {name}, which compose requires")
    for name in ("LIVEKIT_API_SECRET", "INTERNAL_API_TOKEN", "POSTGRES_PASSWORD"):
        if name not in secrets:
            problems.append(f"{PLAIN.name} does not require {name} (${{{name}:?…}})")
    for name in ("VECHE_DOMAIN", "ACME_EMAIL"):
        if name not in tls_only:
            problems.append(f"{TLS.name} does not require {name}")
    for path in (PLAIN, TLS):
        for use in secret_defaults(path):
            problems.append(f"{path.name}: {use} runs without the secret; write ${{NAME:?…}}")

    def filled(names: list[str]) -> dict[str, str]:
        env = dict(example)
        for name in names:
            if not env.get(name):
                env[name] = DUMMIES.get(name, f"check-compose-{name.lower().replace('_', '-')}")
        return env

    plain_env = filled(secrets)
    tls_env = filled(secrets + tls_only)
    variants = {
        "plain": ([PLAIN], plain_env, secrets),
        "tls": ([PLAIN, TLS], tls_env, secrets + tls_only),
    }

    # 2. Accepted, without warnings; 4. what the resolved configuration says.
    resolved: dict[str, dict[str, Any]] = {}
    for variant, (files, env, _) in variants.items():
        result = compose.config(files, env, "--format", "json")
        if result.returncode != 0:
            problems.append(f"{variant}: compose config failed: {result.stderr.strip()}")
            continue
        if result.stderr.strip():
            problems.append(f"{variant}: compose config warns: {result.stderr.strip()}")
        # --quiet as the operator runs it (only validates).
        quiet = compose.config(files, env, "--quiet")
        if quiet.returncode != 0:
            problems.append(f"{variant}: compose config --quiet failed: {quiet.stderr.strip()}")
        resolved[variant] = json.loads(result.stdout)
    if "plain" in resolved:
        problems += check_plain(resolved["plain"], plain_env, example)
    if "tls" in resolved:
        problems += check_tls(resolved["tls"], tls_env)

    # 3. Each required variable, unset, stops compose with its name.
    for variant, (files, env, names) in variants.items():
        for name in names:
            without = {key: value for key, value in env.items() if key != name}
            result = compose.config(files, without, "--quiet")
            if result.returncode == 0:
                problems.append(f"{variant}: compose config passes with {name} unset")
            elif name not in result.stderr:
                reason = result.stderr.strip()
                problems.append(f"{variant}: without {name}, compose fails for another reason: {reason}")
    return problems


def ports(service: dict[str, Any]) -> list[dict[str, Any]]:
    return list(service.get("ports", []))


def check_plain(config: dict[str, Any], env: dict[str, str], example: dict[str, str]) -> list[str]:
    problems = []
    services = config["services"]
    for name, service in services.items():
        for port in ports(service):
            if port.get("host_ip") != "127.0.0.1":
                problems.append(f"plain: {name} publishes {port.get('published')} on {port.get('host_ip')!r}")
    for name in STATELESS:
        replicas = services[name].get("deploy", {}).get("replicas")
        variable = f"{name.upper().replace('-', '_')}_REPLICAS"
        if replicas != int(example.get(variable) or 2):
            problems.append(f"plain: {name} has {replicas} replicas, not {variable} (2 by default)")
    redis = services["redis"]
    command = " ".join(redis.get("command", []))
    if "--appendonly yes" not in command or "--appendfsync everysec" not in command:
        problems.append(f"plain: redis runs without AOF: {command}")
    for name, target in (("redis", "/data"), ("nats", "/data"), ("postgres", "/var/lib/postgresql/data")):
        mounts = [m for m in services[name].get("volumes", []) if m.get("target") == target]
        named = [m for m in mounts if m.get("type") == "volume" and m.get("source") in config["volumes"]]
        if not named:
            problems.append(f"plain: {name}'s {target} is not a named volume")
    livekit = services["livekit"]
    keys = livekit["environment"].get("LIVEKIT_KEYS")
    if keys != f"{env['LIVEKIT_API_KEY']}: {env['LIVEKIT_API_SECRET']}":
        problems.append(f"plain: LiveKit's LIVEKIT_KEYS is {keys!r}, not the key pair of the variables")
    if any("livekit.yaml" in str(m.get("source", "")) for m in livekit.get("volumes", [])):
        problems.append("plain: LiveKit mounts a config file")
    for name in ("rooms", "media-token"):
        environment = services[name]["environment"]
        if environment.get("LIVEKIT_API_SECRET") != env["LIVEKIT_API_SECRET"]:
            problems.append(f"plain: {name} does not get LIVEKIT_API_SECRET from the variable")
    return problems


def check_tls(config: dict[str, Any], env: dict[str, str]) -> list[str]:
    problems = []
    services = config["services"]
    traefik = services["traefik"]
    published = sorted((str(p.get("published")), p.get("target")) for p in ports(traefik))
    if published != [("443", 443), ("80", 80)]:
        problems.append(f"tls: the gateway publishes {published}, not 80 and 443")
    command = traefik.get("command", [])
    domain = env["VECHE_DOMAIN"]
    for flag in (
        f"--entryPoints.websecure.http.tls.domains[0].main={domain}",
        "--entryPoints.websecure.http.tls.certResolver=letsencrypt",
        f"--certificatesResolvers.letsencrypt.acme.email={env['ACME_EMAIL']}",
        "--entryPoints.web.http.redirections.entryPoint.to=websecure",
    ):
        if flag not in command:
            problems.append(f"tls: the gateway's command lacks {flag}")
    targets = [m.get("target") for m in traefik.get("volumes", [])]
    if any(str(t).startswith("/etc/traefik/traefik.") for t in targets):
        problems.append("tls: a static config file is mounted; Traefik would ignore its flags")
    if "/acme" not in targets:
        problems.append("tls: the ACME storage (/acme) is not mounted")
    for name in ("rooms", "media-token", "web"):
        url = services[name]["environment"].get("LIVEKIT_URL")
        if url != f"wss://{domain}":
            problems.append(f"tls: {name} hands out LIVEKIT_URL={url}")
    for port in ports(services["livekit"]):
        if port.get("target") == 7880 and port.get("host_ip") != "127.0.0.1":
            problems.append("tls: LiveKit's 7880 is published beyond this host")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", type=Path, default=ROOT / ".bin" / "docker-compose")
    args = parser.parse_args()
    if not args.compose.exists():
        print(f"{args.compose} is missing: run make install (it builds Docker Compose v2)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="check-compose-") as workdir:
        compose = Compose(args.compose, Path(workdir))
        problems = check(compose)
        required_plain, required_tls = required(PLAIN), required(TLS)
    if problems:
        for problem in problems:
            print(f"check_compose: {problem}", file=sys.stderr)
        return 1
    tls_only = [name for name in required_tls if name not in required_plain]
    print(
        f"check_compose: deploy/compose.yaml and with compose.tls.yaml valid ({compose.runs} compose runs);"
        f" refused when unset: {', '.join(required_plain)}; with TLS also {', '.join(tls_only)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
