"""deploy/k8s, checked offline by veche.local.check_k8s (`make lint`): the repository's
kustomizations pass, and each kind of broken reference is caught. Needs the kustomize that
`make install` builds into .bin/; no cluster, no server."""

import base64
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from veche.local import check_k8s
from veche.local.check_k8s import reference_errors, schema_errors

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / ".bin" / "kustomize"
VERSION = check_k8s.KUBERNETES_VERSION

needs_kustomize = pytest.mark.skipif(not KUSTOMIZE.exists(), reason="make install builds .bin/kustomize")


def render(target: str) -> list[dict[str, Any]]:
    return check_k8s.render(str(KUSTOMIZE), check_k8s.K8S, target)


def of(objects: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(prefix))


@needs_kustomize
def test_the_repository_passes_every_check():
    result = subprocess.run(
        [sys.executable, "-m", "veche.local.check_k8s", "--kustomize", str(KUSTOMIZE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert set(summary) == {
        "deploy/k8s",
        "deploy/k8s/livekit",
        "deploy/k8s/overlays/production",
        "deploy/k8s/monitoring",
    }
    for label, line in summary.items():
        count, rest = line.split(" objects, ")
        assert int(count) > 0 and rest == "no problem(s)", (label, line)


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    if not KUSTOMIZE.exists():
        pytest.skip("make install builds .bin/kustomize")
    return render("overlays/production")


def _broken_kustomization(tmp_path: Path, secret_name: str) -> Path:
    """A kustomization of its own whose Deployment takes a key of Secret `secret_name`; the
    only Secret it renders is `app-secrets`."""
    tmp_path.mkdir()
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "demo",
                "resources": ["app.yaml"],
                "secretGenerator": [{"name": "app-secrets", "literals": ["TOKEN=x"]}],
            }
        )
    )
    container = {
        "name": "app",
        "image": "app:1",
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "TOKEN"}}}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": {"containers": [container]}},
        },
    }
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(deployment))
    return tmp_path


@needs_kustomize
def test_a_reference_to_a_secret_that_is_not_rendered_fails_the_check(tmp_path):
    broken = _broken_kustomization(tmp_path / "broken", "missing-secrets")
    problems = check_k8s.check(str(KUSTOMIZE), VERSION, broken, ["."])
    assert problems == [
        "deploy/k8s: Deployment/app: app env TOKEN: Secret missing-secrets is not rendered"
    ], problems
    # The same kustomization naming the Secret it generates passes (kustomize adds the hash).
    fine = _broken_kustomization(tmp_path / "fine", "app-secrets")
    assert check_k8s.check(str(KUSTOMIZE), VERSION, fine, ["."]) == []
    exit_code = subprocess.run(
        [
            sys.executable,
            "-m",
            "veche.local.check_k8s",
            "--kustomize",
            str(KUSTOMIZE),
            "--k8s",
            str(broken),
            ".",
        ],
        capture_output=True,
        check=False,
    ).returncode
    assert exit_code == 1


@needs_kustomize
def test_secrets_come_from_the_git_ignored_env_files_and_the_build_fails_without_them(tmp_path):
    copy = tmp_path / "k8s"
    real = shutil.ignore_patterns("*.env", "livekit.yaml", "tls.crt", "tls.key")
    shutil.copytree(check_k8s.K8S, copy, ignore=real)
    built = subprocess.run([str(KUSTOMIZE), "build", str(copy)], capture_output=True, text=True, check=False)
    assert built.returncode != 0 and "veche.env" in built.stderr
    real_files = [
        "deploy/k8s/base/secrets/veche.env",
        "deploy/k8s/livekit/secrets/livekit.yaml",
        "deploy/k8s/livekit/secrets/tls.key",
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", *real_files], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert len(ignored.stdout.split()) == 3, ignored.stdout
    kinds = [(o["kind"], o["metadata"]["name"]) for o in render(".")]
    assert not [name for kind, name in kinds if kind == "Secret" and not name.startswith("veche-secrets-")]


def test_each_kind_of_broken_reference_is_caught(production):
    def broken(change) -> list[str]:  # type: ignore[no-untyped-def]
        objects = yaml.safe_load(yaml.safe_dump(production))
        change(objects)
        return reference_errors(objects, check_k8s.EXTERNAL["*"])

    assert reference_errors(production, check_k8s.EXTERNAL["*"]) == []

    def secret_key(objects):  # type: ignore[no-untyped-def]
        rooms = of(objects, "Deployment", "rooms")["spec"]["template"]["spec"]
        rooms["initContainers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "DATABASE_URI"

    assert any("has no key DATABASE_URI" in p for p in broken(secret_key))

    def config_map(objects):  # type: ignore[no-untyped-def]
        chat = of(objects, "Deployment", "chat")["spec"]["template"]["spec"]["containers"][0]
        chat["envFrom"][0]["configMapRef"]["name"] = "veche-settings"

    assert any("ConfigMap veche-settings is not rendered" in p for p in broken(config_map))

    def volume(objects):  # type: ignore[no-untyped-def]
        livekit = of(objects, "StatefulSet", "livekit")["spec"]["template"]["spec"]
        livekit["volumes"][1]["secret"]["secretName"] = "turn-cert"

    assert any("volume turn-tls: Secret turn-cert is not rendered" in p for p in broken(volume))

    def url(objects):  # type: ignore[no-untyped-def]
        of(objects, "ConfigMap", "veche-config")["data"]["ROOMS_INTERNAL_URL"] = "http://rooms:8000"

    assert any("ROOMS_INTERNAL_URL: Service rooms has no port 8000" in p for p in broken(url))

    def policy(objects):  # type: ignore[no-untyped-def]
        rule = of(objects, "NetworkPolicy", "to-rooms")["spec"]["egress"][0]
        rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "room"

    assert any("to-rooms: egress[0]: peer podSelector" in p for p in broken(policy))

    def service(objects):  # type: ignore[no-untyped-def]
        of(objects, "Service", "web")["spec"]["selector"]["app.kubernetes.io/name"] = "www"

    assert any(p.startswith("Service/web: selector") for p in broken(service))

    def route(objects):  # type: ignore[no-untyped-def]
        of(objects, "IngressRoute", "veche")["spec"]["routes"][0]["middlewares"][0]["name"] = "strip"

    assert any("Middleware strip is not rendered" in p for p in broken(route))

    def hpa(objects):  # type: ignore[no-untyped-def]
        of(objects, "HorizontalPodAutoscaler", "chat")["spec"]["scaleTargetRef"]["name"] = "chats"

    assert any("scaleTargetRef Deployment/chats" in p for p in broken(hpa))


def _livekit_config(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = of(objects, "Secret", "livekit-config")
    return secret, yaml.safe_load(base64.b64decode(secret["data"]["config.yaml"]))


def _with_livekit_config(production: list[dict[str, Any]], change) -> list[str]:  # type: ignore[no-untyped-def]
    objects = yaml.safe_load(yaml.safe_dump(production))
    secret, config = _livekit_config(objects)
    change(config)
    secret["data"]["config.yaml"] = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    return reference_errors(objects, check_k8s.EXTERNAL["*"])


def test_livekit_runs_with_the_services_key_pair_auto_create_off_and_its_webhook_to_rooms(production):
    _, config = _livekit_config(production)
    assert config["room"]["auto_create"] is False
    assert config["webhook"]["urls"] == ["http://rooms:8001/api/v1/livekit/webhook"]
    assert config["turn"]["enabled"] is True and config["turn"]["tls_port"] == 5349
    livekit = of(production, "StatefulSet", "livekit")["spec"]["template"]["spec"]
    assert "hostNetwork" not in livekit and livekit["securityContext"]["runAsNonRoot"] is True

    def other_secret(config):  # type: ignore[no-untyped-def]
        config["keys"] = {key: "another-secret-of-32-or-more-characters" for key in config["keys"]}

    assert any(
        "secret of LIVEKIT_API_KEY differs" in p for p in _with_livekit_config(production, other_secret)
    )

    def auto_create(config):  # type: ignore[no-untyped-def]
        config["room"]["auto_create"] = True

    assert any("auto_create must be false" in p for p in _with_livekit_config(production, auto_create))

    def webhook(config):  # type: ignore[no-untyped-def]
        config["webhook"]["urls"] = ["http://room:8001/api/v1/livekit/webhook"]

    assert any("Service room is not rendered" in p for p in _with_livekit_config(production, webhook))

    def udp(config):  # type: ignore[no-untyped-def]
        config["rtc"]["udp_port"] = 7999

    assert any("rtc.udp_port 7999: no UDP container port" in p for p in _with_livekit_config(production, udp))


def test_schemas_are_strict_for_kubernetes_kinds_and_for_the_custom_resources(production):
    assert schema_errors(production, VERSION) == []
    objects = yaml.safe_load(yaml.safe_dump(production))
    of(objects, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    of(objects, "Middleware", "retry-elsewhere")["spec"]["retry"]["attempt"] = 3
    of(objects, "IngressRoute", "veche")["spec"]["routes"][0]["kind"] = "Rules"
    objects.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    objects.append(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g", "rules": [{"expr": "up == 0"}]}]},
        }
    )
    problems = "\n".join(schema_errors(objects, VERSION))
    assert "Deployment/web: spec.template.spec.containers[0]: Additional properties" in problems
    assert "'readinessprobe' was unexpected" in problems
    assert "Middleware/retry-elsewhere: spec.retry: Additional properties" in problems
    assert "IngressRoute/veche: spec.routes[0].kind" in problems
    assert "Widget/w: no schema for example.com/v1 Widget" in problems
    assert "PrometheusRule/r: spec.groups[0].rules[0]" in problems  # neither alert nor record


def test_the_namespace_is_restricted_and_everything_else_denied_by_default(production):
    namespace = of(production, "Namespace", "veche")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert namespace[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    deny = of(production, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert not [o for o in production if o["kind"] == "Job"], "migrations run in rooms' initContainer"
    rooms = of(production, "Deployment", "rooms")["spec"]["template"]["spec"]
    assert rooms["initContainers"][0]["command"][-2:] == ["upgrade", "head"]
    for obj in production:
        template = check_k8s.pod_template(obj)
        if template is None:
            continue
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in check_k8s.containers(spec):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert "@sha256:" in container["image"], container["image"]


def test_chat_scales_on_open_sockets_and_cpu(production):
    metrics = of(production, "HorizontalPodAutoscaler", "chat")["spec"]["metrics"]
    assert metrics[0] == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "veche_chat_sockets"},
            "target": {"type": "AverageValue", "averageValue": "2000"},
        },
    }
    assert metrics[1]["resource"]["name"] == "cpu"


def test_pin_digests_rewrites_every_digest_from_the_registry(tmp_path):
    overlay = tmp_path / "kustomization.yaml"
    shutil.copyfile(check_k8s.K8S / "overlays" / "production" / "kustomization.yaml", overlay)
    fake = tmp_path / "bin" / "crane"
    fake.parent.mkdir()
    # A stand-in for `crane digest REF`: a digest made from the reference.
    fake.write_text(
        '#!/bin/sh\n[ "$1" = digest ] || exit 2\n'
        'printf "sha256:%s\\n" "$(printf %s "$2" | sha256sum | cut -c1-64)"\n'
    )
    fake.chmod(0o755)
    result = subprocess.run(
        [sys.executable, str(check_k8s.K8S / "pin-digests.py"), "--tool", "crane", "--overlay", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": f"{fake.parent}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    images = yaml.safe_load(overlay.read_text())["images"]
    assert len(images) == 6
    import hashlib

    for image in images:
        reference = f"{image['name']}:{image['newTag']}"
        assert image["digest"] == "sha256:" + hashlib.sha256(reference.encode()).hexdigest(), reference
    # The comments of the file are kept.
    assert overlay.read_text().startswith("# Production:")
