"""Checks the Kubernetes deployment (deploy/k8s) the way a cluster would take it, offline.

    python -m veche.local.check_k8s [--kustomize .bin/kustomize] [--kubernetes-version 1.35]

`make lint` runs it. For each kustomization of TARGETS it

1. renders it with kustomize, in a temporary copy of deploy/k8s where each git-ignored secret
   file that is missing (secrets/veche.env, livekit's secrets/livekit.yaml, tls.crt, tls.key)
   is its committed `.example`. Real files, where an operator has them, are used as they are, so
   a run before an apply checks the real values too (and prints none of them);
2. validates every rendered object against the Kubernetes API's OpenAPI schema of
   KUBERNETES_VERSION with kubernetes-validate, strict: an unknown or misspelt field is an error;
3. validates the objects of custom resources, which kubernetes-validate has no schema for, with
   CRD_SCHEMAS below: Traefik's IngressRoute and Middleware, the Prometheus Operator's
   ServiceMonitor, PodMonitor and PrometheusRule (the fields of their CRDs, strict at the
   levels veche writes). Any other kind without a schema is an error;
4. checks that what the objects name exists among the rendered objects, or is listed in
   EXTERNAL (the one place that says what a kustomization may name without rendering it):
   the Secrets, ConfigMaps and keys of envFrom, env valueFrom, volumes and projected volumes;
   volume mounts; named probe ports; the Services of URLs in ConfigMaps (and of LiveKit's
   webhook); Service selectors and target ports; the targets of HPAs, PDBs and StatefulSets;
   NetworkPolicy pod selectors (the policy's own, and its same-namespace peers) and named ports;
   IngressRoute services, ports and middlewares; ServiceMonitor and PodMonitor selectors and
   ports;
5. checks LiveKit's configuration (the file its container is started with) against the rest:
   the key pair is the one the services get, the webhook is signed with it and reaches rooms'
   webhook path, room.auto_create is off, its ports are the container's, TURN's certificate is
   mounted.
"""

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[4]
K8S = ROOT / "deploy" / "k8s"
# The kustomizations, relative to deploy/k8s: the base, LiveKit alone, production (both), and
# the monitoring applied after them.
TARGETS = [".", "livekit", "overlays/production", "monitoring"]
# A recent Kubernetes release whose API schemas kubernetes-validate ships.
KUBERNETES_VERSION = "1.35"

# What a kustomization may name without rendering it itself. Each entry stands in for an object
# another kustomization renders (or something outside the cluster's veche namespace); the
# overlays/production render, which has both halves, must need none of the "pods"/"services"
# stand-ins.
EXTERNAL: dict[str, dict[str, Any]] = {
    # The base: LiveKit's pods are deploy/k8s/livekit's (rooms and media-token may reach them,
    # LiveKit may reach rooms).
    ".": {
        "pods": [{"labels": {"app.kubernetes.io/name": "livekit"}, "ports": {"http": 7880}}],
    },
    # LiveKit alone: rooms and media-token are the base's (they call LiveKit's API; LiveKit's
    # webhook goes to rooms' Service).
    "livekit": {
        "pods": [
            {"labels": {"app.kubernetes.io/name": "rooms"}, "ports": {"http": 8001}},
            {"labels": {"app.kubernetes.io/name": "media-token"}, "ports": {"http": 8003}},
        ],
        "services": {"rooms": [8001]},
    },
    # Monitoring: it scrapes the pods of the base and of deploy/k8s/livekit.
    "monitoring": {
        "pods": [
            {"labels": {"app.kubernetes.io/name": "rooms"}, "ports": {"http": 8001}},
            {"labels": {"app.kubernetes.io/name": "chat"}, "ports": {"http": 8002}},
            {"labels": {"app.kubernetes.io/name": "media-token"}, "ports": {"http": 8003}},
            {"labels": {"app.kubernetes.io/name": "janitor"}, "ports": {"http": 8004}},
            {"labels": {"app.kubernetes.io/name": "web"}, "ports": {"http": 8005}},
            {"labels": {"app.kubernetes.io/name": "livekit"}, "ports": {"http": 7880, "metrics": 6789}},
        ],
    },
    # Every render: the namespaces of the dependencies that the ConfigMap's URLs name
    # (REDIS_URL, REDIS_CLUSTER_URL, NATS_URL: Redis and NATS run outside these kustomizations;
    # the network policy reaches them by namespace labels, see base/networkpolicy.yaml).
    "*": {"namespaces": ["redis", "nats"]},
}

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


# --- the custom resources' schemas -------------------------------------------------------------

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_INT_OR_STR: dict[str, Any] = {"type": ["integer", "string"]}
_OBJ: dict[str, Any] = {"type": "object"}
_STR_LIST: dict[str, Any] = {"type": "array", "items": _STR}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STR}


def _closed(properties: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_LABEL_SELECTOR = _closed(
    {
        "matchLabels": _STR_MAP,
        "matchExpressions": {
            "type": "array",
            "items": _closed({"key": _STR, "operator": _STR, "values": _STR_LIST}, ["key", "operator"]),
        },
    }
)
_METADATA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": _STR, "namespace": _STR, "labels": _STR_MAP, "annotations": _STR_MAP},
    "required": ["name"],
}


def _resource(api_versions: list[str], kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _closed(
        {
            "apiVersion": {"enum": api_versions},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
        ["apiVersion", "kind", "metadata", "spec"],
    )


# Traefik v3 (traefik.io/v1alpha1), from its CRDs: every field of IngressRoute, and of the
# middlewares veche configures; any other middleware is one of Traefik's names, its body open.
_TRAEFIK_SERVICE = _closed(
    {
        "name": _STR,
        "namespace": _STR,
        "kind": {"enum": ["Service", "TraefikService"]},
        "port": _INT_OR_STR,
        "scheme": _STR,
        "strategy": _STR,
        "weight": _INT,
        "passHostHeader": _BOOL,
        "responseForwarding": _OBJ,
        "serversTransport": _STR,
        "sticky": _OBJ,
        "nativeLB": _BOOL,
        "nodePortLB": _BOOL,
        "healthCheck": _OBJ,
    },
    ["name"],
)
_INGRESSROUTE_SPEC = _closed(
    {
        "entryPoints": _STR_LIST,
        "parentRefs": {"type": "array"},
        "routes": {
            "type": "array",
            "minItems": 1,
            "items": _closed(
                {
                    "kind": {"const": "Rule"},
                    "match": {"type": "string", "minLength": 1},
                    "priority": _INT,
                    "syntax": _STR,
                    "middlewares": {
                        "type": "array",
                        "items": _closed({"name": _STR, "namespace": _STR}, ["name"]),
                    },
                    "services": {"type": "array", "items": _TRAEFIK_SERVICE},
                    "observability": _OBJ,
                },
                ["match"],
            ),
        },
        "tls": _closed(
            {
                "secretName": _STR,
                "options": _OBJ,
                "store": _OBJ,
                "certResolver": _STR,
                "domains": {"type": "array"},
            }
        ),
    },
    ["routes"],
)
_TRAEFIK_MIDDLEWARES = [
    "addPrefix", "basicAuth", "buffering", "chain", "circuitBreaker", "compress", "contentType",
    "digestAuth", "errors", "forwardAuth", "grpcWeb", "headers", "inFlightReq", "ipAllowList",
    "ipWhiteList", "passTLSClientCert", "plugin", "redirectRegex", "redirectScheme", "replacePath",
    "replacePathRegex", "retry", "stripPrefix", "stripPrefixRegex", "rateLimit",
]  # fmt: skip
_MIDDLEWARE_SPEC: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{name: _OBJ for name in _TRAEFIK_MIDDLEWARES},
        "rateLimit": _closed(
            {
                "average": _INT_OR_STR,
                "period": _INT_OR_STR,
                "burst": _INT,
                "sourceCriterion": _OBJ,
                "redis": _OBJ,
            }
        ),
        "retry": _closed({"attempts": _INT, "initialInterval": _INT_OR_STR}),
        "stripPrefix": _closed({"prefixes": _STR_LIST, "forceSlash": _BOOL}),
        "stripPrefixRegex": _closed({"regex": _STR_LIST}, ["regex"]),
    },
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}
# The Prometheus Operator (monitoring.coreos.com/v1).
_ENDPOINT_COMMON = {
    "port": _STR,
    "path": _STR,
    "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
    "interval": _STR,
    "scrapeTimeout": _STR,
    "honorLabels": _BOOL,
    "honorTimestamps": _BOOL,
    "params": _OBJ,
    "relabelings": {"type": "array"},
    "metricRelabelings": {"type": "array"},
    "tlsConfig": _OBJ,
    "basicAuth": _OBJ,
    "authorization": _OBJ,
    "oauth2": _OBJ,
    "followRedirects": _BOOL,
    "enableHttp2": _BOOL,
    "filterRunning": _BOOL,
    "proxyUrl": _STR,
    "trackTimestampsStaleness": _BOOL,
}
_MONITOR_COMMON = {
    "selector": _LABEL_SELECTOR,
    "namespaceSelector": _closed({"any": _BOOL, "matchNames": _STR_LIST}),
    "jobLabel": _STR,
    "podTargetLabels": _STR_LIST,
    "sampleLimit": _INT,
    "targetLimit": _INT,
    "labelLimit": _INT,
    "labelNameLengthLimit": _INT,
    "labelValueLengthLimit": _INT,
    "attachMetadata": _OBJ,
    "scrapeProtocols": _STR_LIST,
}
_SERVICEMONITOR_SPEC = _closed(
    {
        **_MONITOR_COMMON,
        "targetLabels": _STR_LIST,
        "endpoints": {
            "type": "array",
            "minItems": 1,
            "items": _closed({**_ENDPOINT_COMMON, "targetPort": _INT_OR_STR, "bearerTokenFile": _STR}),
        },
    },
    ["selector", "endpoints"],
)
_PODMONITOR_SPEC = _closed(
    {
        **_MONITOR_COMMON,
        "podMetricsEndpoints": {
            "type": "array",
            "minItems": 1,
            "items": _closed({**_ENDPOINT_COMMON, "portNumber": _INT}),
        },
    },
    ["selector", "podMetricsEndpoints"],
)
_RULE = {
    "type": "object",
    "properties": {
        "alert": {"type": "string", "minLength": 1},
        "record": {"type": "string", "minLength": 1},
        "expr": {"type": ["string", "integer"], "minLength": 1},
        "for": _STR,
        "keep_firing_for": _STR,
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
    },
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}
_PROMETHEUSRULE_SPEC = _closed(
    {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": _closed(
                {
                    "name": {"type": "string", "minLength": 1},
                    "interval": _STR,
                    "query_offset": _STR,
                    "limit": _INT,
                    "partial_response_strategy": _STR,
                    "labels": _STR_MAP,
                    "rules": {"type": "array", "items": _RULE},
                },
                ["name", "rules"],
            ),
        }
    },
    ["groups"],
)
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "IngressRoute": _resource(["traefik.io/v1alpha1"], "IngressRoute", _INGRESSROUTE_SPEC),
    "Middleware": _resource(["traefik.io/v1alpha1"], "Middleware", _MIDDLEWARE_SPEC),
    "ServiceMonitor": _resource(["monitoring.coreos.com/v1"], "ServiceMonitor", _SERVICEMONITOR_SPEC),
    "PodMonitor": _resource(["monitoring.coreos.com/v1"], "PodMonitor", _PODMONITOR_SPEC),
    "PrometheusRule": _resource(["monitoring.coreos.com/v1"], "PrometheusRule", _PROMETHEUSRULE_SPEC),
}


# --- rendering ---------------------------------------------------------------------------------


def render(kustomize: str, k8s: Path, target: str) -> list[dict[str, Any]]:
    """`kustomize build` of deploy/k8s/<target>, in a copy where every missing secret file is
    its committed `.example`."""
    with tempfile.TemporaryDirectory(prefix="veche-k8s-") as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(k8s, copy)
        for example in copy.rglob("*.example"):
            real = example.with_suffix("")
            if not real.exists():
                shutil.copyfile(example, real)
        built = subprocess.run(
            [kustomize, "build", str(copy / target)], capture_output=True, text=True, check=False
        )
    if built.returncode != 0:
        raise RenderError(built.stderr.strip().replace(tmp, "<copy>"))
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


class RenderError(Exception):
    pass


# --- schemas -----------------------------------------------------------------------------------


def _where(path: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(top)"


def schema_errors(objects: list[dict[str, Any]], version: str) -> list[str]:
    import jsonschema
    import kubernetes_validate

    errors = []
    for obj in objects:
        name = describe(obj)
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            continue
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {_where(exc.absolute_path)}: {exc.message}")
            continue
        except kubernetes_validate.SchemaNotFoundError:
            pass
        schema = CRD_SCHEMAS.get(obj.get("kind", ""))
        if schema is None:
            errors.append(
                f"{name}: no schema for {obj.get('apiVersion')} {obj.get('kind')}: add one to CRD_SCHEMAS"
            )
            continue
        for error in sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: e.path):
            errors.append(f"{name}: {_where(error.absolute_path)}: {error.message}")
    return errors


# --- references --------------------------------------------------------------------------------


def describe(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


@dataclass
class Pod:
    """A pod template (or a stand-in for one of another kustomization)."""

    owner: str
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]
    ports: dict[str, int] = field(default_factory=dict)  # container port name → number
    numbers: set[int] = field(default_factory=set)


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template")
    if kind in POD_KINDS:
        return obj.get("spec", {}).get("template")
    return None


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", []) or []
    yield from spec.get("containers", []) or []


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) against labels; {} matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _data_keys(obj: dict[str, Any]) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("stringData") or {}) | set(obj.get("binaryData") or {})


def _decoded(obj: dict[str, Any], key: str) -> str | None:
    if key in (obj.get("stringData") or {}):
        return str(obj["stringData"][key])
    if key in (obj.get("data") or {}):
        value = obj["data"][key]
        return base64.b64decode(value).decode() if obj.get("kind") == "Secret" else str(value)
    return None


class Rendered:
    """The objects of one render, indexed, with the stand-ins EXTERNAL allows it."""

    def __init__(
        self, objects: list[dict[str, Any]], external: dict[str, Any], default_namespace: str
    ) -> None:
        self.objects = objects
        self.default_namespace = default_namespace
        self.by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.pods: list[Pod] = []
        self.external_services: dict[str, list[int]] = dict(external.get("services", {}))
        self.external_namespaces = set(external.get("namespaces", []))
        for obj in objects:
            self.by_key[(obj.get("kind", ""), self.ns(obj), obj.get("metadata", {}).get("name", ""))] = obj
            template = pod_template(obj)
            if template is not None:
                spec = template.get("spec", {})
                pod = Pod(describe(obj), self.ns(obj), template.get("metadata", {}).get("labels") or {}, spec)
                for container in containers(spec):
                    for port in container.get("ports") or []:
                        if "name" in port:
                            pod.ports[port["name"]] = port["containerPort"]
                        pod.numbers.add(port["containerPort"])
                self.pods.append(pod)
        self.real_pods = list(self.pods)
        for stand_in in external.get("pods", []):
            ports = dict(stand_in.get("ports", {}))
            pod = Pod(
                "(external)", default_namespace, dict(stand_in["labels"]), {}, ports, set(ports.values())
            )
            self.pods.append(pod)

    def ns(self, obj: dict[str, Any]) -> str:
        return obj.get("metadata", {}).get("namespace") or self.default_namespace

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.by_key.get((kind, namespace, name))

    def pods_matching(self, namespace: str, selector: dict[str, Any] | None) -> list[Pod]:
        return [pod for pod in self.pods if pod.namespace == namespace and matches(selector, pod.labels)]


def reference_errors(objects: list[dict[str, Any]], external: dict[str, Any] | None = None) -> list[str]:
    """Everything the objects name that is neither rendered nor an EXTERNAL stand-in."""
    namespaces = {o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"}
    named = {o.get("metadata", {}).get("namespace") for o in objects} - {None}
    default_namespace = min(named, default=None) or min(namespaces, default="default")
    world = Rendered(objects, external or {}, default_namespace)
    errors: list[str] = []
    for obj in objects:
        kind = obj.get("kind")
        for problem in _CHECKS.get(kind or "", _no_check)(world, obj):
            errors.append(f"{describe(obj)}: {problem}")
        template = pod_template(obj)
        if template is not None:
            errors += [
                f"{describe(obj)}: {p}" for p in _pod_problems(world, world.ns(obj), template.get("spec", {}))
            ]
        if kind == "ConfigMap":
            errors += [f"{describe(obj)}: {p}" for p in _configmap_url_problems(world, obj)]
    errors += livekit_problems(world)
    return errors


def _no_check(world: Rendered, obj: dict[str, Any]) -> list[str]:
    return []


def _pod_problems(world: Rendered, namespace: str, spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []

    def need(kind: str, name: str, key: str | None, where: str, optional: bool = False) -> None:
        found = world.get(kind, namespace, name)
        if found is None:
            if not optional:
                problems.append(f"{where}: {kind} {name} is not rendered")
        elif key is not None and key not in _data_keys(found):
            problems.append(f"{where}: {kind} {name} has no key {key}")

    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for volume in volumes.values():
        where = f"volume {volume['name']}"
        if "secret" in volume:
            secret = volume["secret"]
            need("Secret", secret.get("secretName", ""), None, where, secret.get("optional", False))
            for item in secret.get("items") or []:
                need(
                    "Secret", secret.get("secretName", ""), item["key"], where, secret.get("optional", False)
                )
        if "configMap" in volume:
            cm = volume["configMap"]
            need("ConfigMap", cm.get("name", ""), None, where, cm.get("optional", False))
            for item in cm.get("items") or []:
                need("ConfigMap", cm.get("name", ""), item["key"], where, cm.get("optional", False))
        for source in (volume.get("projected") or {}).get("sources") or []:
            for kind, ref in (("Secret", source.get("secret")), ("ConfigMap", source.get("configMap"))):
                if ref:
                    need(kind, ref.get("name", ""), None, where, ref.get("optional", False))
                    for item in ref.get("items") or []:
                        need(kind, ref.get("name", ""), item["key"], where, ref.get("optional", False))
    for pull in spec.get("imagePullSecrets") or []:
        need("Secret", pull["name"], None, "imagePullSecrets")
    account = spec.get("serviceAccountName")
    if account and account != "default":
        need("ServiceAccount", account, None, "serviceAccountName")
    for container in containers(spec):
        cname = container.get("name")
        port_names = {p["name"] for p in container.get("ports") or [] if "name" in p}
        for source in container.get("envFrom") or []:
            for kind, ref in (("ConfigMap", source.get("configMapRef")), ("Secret", source.get("secretRef"))):
                if ref:
                    need(kind, ref.get("name", ""), None, f"{cname} envFrom", ref.get("optional", False))
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for kind, ref in (
                ("ConfigMap", source.get("configMapKeyRef")),
                ("Secret", source.get("secretKeyRef")),
            ):
                if ref:
                    need(
                        kind,
                        ref.get("name", ""),
                        ref["key"],
                        f"{cname} env {env['name']}",
                        ref.get("optional", False),
                    )
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in volumes:
                problems.append(f"{cname}: volumeMount {mount['name']} names no volume")
        for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(probe_name) or {}
            for action in ("httpGet", "tcpSocket", "grpc"):
                port = (probe.get(action) or {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    problems.append(f"{cname}: {probe_name} port {port} is no container port of it")
    return problems


def _service_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec", {})
    selector = spec.get("selector")
    if not selector:
        return []  # endpoints managed by hand (or ExternalName)
    pods = [p for p in world.pods_matching(world.ns(obj), {"matchLabels": selector})]
    if not pods:
        return [f"selector {selector} matches no pod"]
    problems = []
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        protocol = port.get("protocol", "TCP")
        for pod in pods:
            known = pod.ports if isinstance(target, str) else {str(n): n for n in pod.numbers}
            if str(target) not in known:
                label = port.get("name", port.get("port"))
                problems.append(f"port {label} ({protocol}): {pod.owner} has no port {target}")
    return problems


def _service_has_port(world: Rendered, namespace: str, name: str, port: int | str | None) -> str | None:
    """None when Service `name` exists (or stands in) with `port`, else the problem."""
    service = world.get("Service", namespace, name)
    if service is None:
        if name in world.external_services and namespace == world.default_namespace:
            if port is None or port in world.external_services[name]:
                return None
            return f"Service {name} (external) has no port {port}"
        return f"Service {name} is not rendered"
    if port is None:
        return None
    ports = service.get("spec", {}).get("ports") or []
    if any(port in (p.get("port"), p.get("name")) for p in ports):
        return None
    return f"Service {name} has no port {port}"


def _hpa_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    ref = obj.get("spec", {}).get("scaleTargetRef", {})
    if world.get(ref.get("kind", ""), world.ns(obj), ref.get("name", "")) is None:
        return [f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not rendered"]
    return []


def _pdb_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    if not [
        p
        for p in world.real_pods
        if p.namespace == world.ns(obj) and matches(obj["spec"].get("selector"), p.labels)
    ]:
        return ["selector matches no pod"]
    return []


def _statefulset_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    name = obj.get("spec", {}).get("serviceName")
    if name and world.get("Service", world.ns(obj), name) is None:
        return [f"serviceName {name}: Service is not rendered"]
    return []


def _dead_values(world: Rendered, namespace: str, selector: dict[str, Any] | None) -> list[str]:
    """The values of `key In [...]` expressions that no pod of the namespace carries: a name
    misspelt in a list still matches the other pods, so it would go unnoticed otherwise."""
    dead = []
    for expr in (selector or {}).get("matchExpressions") or []:
        if expr.get("operator") == "In":
            carried = {p.labels.get(expr["key"]) for p in world.pods if p.namespace == namespace}
            dead += [f"{expr['key']}={v}" for v in expr.get("values") or [] if v not in carried]
    return dead


def _networkpolicy_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    namespace = world.ns(obj)
    spec = obj.get("spec", {})
    problems = []
    selected = [
        p for p in world.real_pods if p.namespace == namespace and matches(spec.get("podSelector"), p.labels)
    ]
    if not selected:
        problems.append(f"podSelector {spec.get('podSelector')} matches no pod")
    for dead in _dead_values(world, namespace, spec.get("podSelector")):
        problems.append(f"podSelector: no pod has {dead}")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            peers = rule.get(peers_key) or []
            same_namespace_pods: list[Pod] = []
            for peer in peers:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    found = world.pods_matching(namespace, peer["podSelector"])
                    if not found:
                        problems.append(
                            f"{direction}[{i}]: peer podSelector {peer['podSelector']} matches no pod"
                        )
                    for dead in _dead_values(world, namespace, peer["podSelector"]):
                        problems.append(f"{direction}[{i}]: peer podSelector: no pod has {dead}")
                    same_namespace_pods += found
            # A named port is the destination's: the selected pods for ingress, the peers for egress
            # (only checkable when the peers are pods of this namespace).
            owners = selected if direction == "ingress" else same_namespace_pods
            if direction == "egress" and len(same_namespace_pods) == 0:
                continue
            for port in rule.get("ports") or []:
                name = port.get("port")
                if isinstance(name, str) and owners and not any(name in p.ports for p in owners):
                    problems.append(f"{direction}[{i}]: named port {name} is no container port of its pods")
    return problems


def _ingressroute_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    namespace = world.ns(obj)
    problems = []
    for i, route in enumerate(obj.get("spec", {}).get("routes") or []):
        for middleware in route.get("middlewares") or []:
            where = middleware.get("namespace", namespace)
            if world.get("Middleware", where, middleware["name"]) is None:
                problems.append(f"routes[{i}]: Middleware {middleware['name']} is not rendered")
        for service in route.get("services") or []:
            if service.get("kind", "Service") != "Service":
                continue
            problem = _service_has_port(
                world, service.get("namespace", namespace), service["name"], service.get("port")
            )
            if problem:
                problems.append(f"routes[{i}]: {problem}")
    return problems


def _servicemonitor_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec", {})
    namespace = world.ns(obj)
    services = [
        o
        for o in world.objects
        if o.get("kind") == "Service"
        and world.ns(o) == namespace
        and matches(spec.get("selector"), o.get("metadata", {}).get("labels") or {})
    ]
    if not services:
        return [f"selector {spec.get('selector')} matches no Service"]
    problems = []
    for endpoint in spec.get("endpoints") or []:
        port = endpoint.get("port")
        if port and not any(port in {p.get("name") for p in s["spec"].get("ports", [])} for s in services):
            problems.append(f"endpoint port {port} is no port of the Services it selects")
    return problems


def _podmonitor_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec", {})
    pods = world.pods_matching(world.ns(obj), spec.get("selector"))
    if not pods:
        return [f"selector {spec.get('selector')} matches no pod"]
    return [
        f"endpoint port {e['port']} is no container port of the pods it selects"
        for e in spec.get("podMetricsEndpoints") or []
        if e.get("port") and not any(e["port"] in p.ports for p in pods)
    ]


_CHECKS = {
    "Service": _service_problems,
    "HorizontalPodAutoscaler": _hpa_problems,
    "PodDisruptionBudget": _pdb_problems,
    "StatefulSet": _statefulset_problems,
    "NetworkPolicy": _networkpolicy_problems,
    "IngressRoute": _ingressroute_problems,
    "ServiceMonitor": _servicemonitor_problems,
    "PodMonitor": _podmonitor_problems,
}

_URL_SCHEMES = (
    "http",
    "https",
    "ws",
    "wss",
    "redis",
    "rediss",
    "nats",
    "tls",
    "postgresql",
    "postgresql+asyncpg",
)


def cluster_service(host: str, namespace: str) -> tuple[str, str] | None:
    """(service, namespace) when `host` is a Service's name in the cluster: `svc`, `svc.ns`, or
    `svc.ns.svc[.<cluster domain>]` (and `pod.svc.ns.svc…` of a headless Service); None for a
    name outside the cluster."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2:
        return parts[0], parts[1]
    if "svc" in parts[1:]:
        at = parts.index("svc", 1)
        if at >= 2:
            return parts[at - 2], parts[at - 1]
    return None


def url_problem(world: Rendered, namespace: str, url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in _URL_SCHEMES or not parts.hostname:
        return None
    found = cluster_service(parts.hostname, namespace)
    if found is None:
        return None
    service, service_namespace = found
    if service_namespace != namespace:
        if service_namespace in world.external_namespaces:
            return None
        return f"{url}: namespace {service_namespace} is neither rendered nor listed in EXTERNAL"
    return _service_has_port(world, namespace, service, parts.port)


def _configmap_url_problems(world: Rendered, obj: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in (obj.get("data") or {}).items():
        for candidate in str(value).split(","):
            if "://" in candidate:
                problem = url_problem(world, world.ns(obj), candidate)
                if problem:
                    problems.append(f"{key}: {problem}")
    return problems


# --- LiveKit's configuration ---------------------------------------------------------------------

WEBHOOK_PATH = "/api/v1/livekit/webhook"


def livekit_problems(world: Rendered) -> list[str]:
    """Checks the config file of every livekit-server container against the rest."""
    problems: list[str] = []
    for obj in world.objects:
        template = pod_template(obj)
        if template is None:
            continue
        spec = template.get("spec", {})
        for container in containers(spec):
            if "livekit-server" not in str(container.get("image", "")):
                continue
            where = f"{describe(obj)}: {container['name']}"
            config, why = _livekit_config(world, world.ns(obj), spec, container)
            if config is None:
                problems.append(f"{where}: {why}")
                continue
            problems += [
                f"{where}: config: {p}"
                for p in _livekit_config_problems(world, world.ns(obj), spec, container, config)
            ]
    return problems


def _mounted_file(
    world: Rendered, namespace: str, spec: dict[str, Any], container: dict[str, Any], path: str
) -> tuple[dict[str, Any] | None, str] | None:
    """(object, key) of the Secret/ConfigMap key mounted at `path`, or None."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        directory = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(directory):
            continue
        key = path[len(directory) :]
        volume = volumes.get(mount["name"], {})
        if "secret" in volume:
            return world.get("Secret", namespace, volume["secret"].get("secretName", "")), key
        if "configMap" in volume:
            return world.get("ConfigMap", namespace, volume["configMap"].get("name", "")), key
    return None


def _livekit_config(
    world: Rendered, namespace: str, spec: dict[str, Any], container: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if "--config" not in args[:-1]:
        return None, "livekit-server is not started with --config <file>"
    path = args[args.index("--config") + 1]
    found = _mounted_file(world, namespace, spec, container, path)
    if found is None or found[0] is None:
        return None, f"--config {path} is not a file of a rendered Secret or ConfigMap"
    text = _decoded(found[0], found[1])
    if text is None:
        return None, f"--config {path}: {describe(found[0])} has no key {found[1]}"
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        return None, f"--config {path} is not a YAML mapping"
    return config, ""


def _livekit_config_problems(
    world: Rendered, namespace: str, spec: dict[str, Any], container: dict[str, Any], config: dict[str, Any]
) -> list[str]:
    problems = []
    keys = config.get("keys") or {}
    if not isinstance(keys, dict) or not keys:
        problems.append("keys: no key pair")
        keys = {}
    if (config.get("room") or {}).get("auto_create") is not False:
        problems.append("room.auto_create must be false (only media-token creates LiveKit rooms)")
    webhook = config.get("webhook") or {}
    if webhook.get("api_key") not in keys:
        problems.append("webhook.api_key is not one of keys")
    urls = webhook.get("urls") or []
    if not urls:
        problems.append("webhook.urls: none (rooms must get LiveKit's webhooks)")
    for url in urls:
        if urlsplit(url).path != WEBHOOK_PATH:
            problems.append(f"webhook url {url}: the path is not {WEBHOOK_PATH}")
        problem = url_problem(world, namespace, url)
        if problem:
            problems.append(f"webhook url {problem}")
    # The services' key pair (veche-secrets): LiveKit must know it, with the same secret.
    for secret in (o for o in world.objects if o.get("kind") == "Secret" and world.ns(o) == namespace):
        key, value = _decoded(secret, "LIVEKIT_API_KEY"), _decoded(secret, "LIVEKIT_API_SECRET")
        if key is None or value is None:
            continue
        if key not in keys:
            problems.append(f"keys: LIVEKIT_API_KEY of {describe(secret)} is not among them")
        elif str(keys[key]) != value:
            problems.append(f"keys: the secret of LIVEKIT_API_KEY differs from {describe(secret)}'s")
        if webhook.get("api_key") != key:
            problems.append(f"webhook.api_key is not LIVEKIT_API_KEY of {describe(secret)}")
    numbers = {p["containerPort"]: p.get("protocol", "TCP") for p in container.get("ports") or []}
    rtc = config.get("rtc") or {}
    for field_name, value, protocol in (
        ("port", config.get("port", 7880), "TCP"),
        ("rtc.tcp_port", rtc.get("tcp_port"), "TCP"),
        ("rtc.udp_port", rtc.get("udp_port"), "UDP"),
    ):
        if value is not None and numbers.get(value) != protocol:
            problems.append(f"{field_name} {value}: no {protocol} container port")
    turn = config.get("turn") or {}
    if turn.get("enabled"):
        if not turn.get("domain"):
            problems.append("turn.domain: empty")
        if turn.get("tls_port") and numbers.get(turn["tls_port"]) != "TCP":
            problems.append(f"turn.tls_port {turn['tls_port']}: no TCP container port")
        if turn.get("tls_port") and not turn.get("external_tls"):
            for name in ("cert_file", "key_file"):
                path = turn.get(name)
                found = _mounted_file(world, namespace, spec, container, path) if path else None
                if not path or found is None or found[0] is None or found[1] not in _data_keys(found[0]):
                    problems.append(f"turn.{name} {path}: not a file of a rendered Secret")
    return problems


# --- main --------------------------------------------------------------------------------------


def check(kustomize: str, version: str, k8s: Path = K8S, targets: Iterable[str] = TARGETS) -> list[str]:
    """Every problem of every target, each line prefixed with its kustomization."""
    problems = []
    for target in targets:
        label = "deploy/k8s" if target == "." else f"deploy/k8s/{target}"
        try:
            objects = render(kustomize, k8s, target)
        except RenderError as exc:
            problems.append(f"{label}: kustomize build failed: {exc}")
            continue
        external = {**EXTERNAL.get("*", {}), **EXTERNAL.get(target, {})}
        found = schema_errors(objects, version) + reference_errors(objects, external)
        problems += [f"{label}: {line}" for line in found]
        print(f"{label}: {len(objects)} objects, {len(found) or 'no'} problem(s)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ROOT / ".bin" / "kustomize"
    parser.add_argument("--kustomize", default=str(default) if default.exists() else "kustomize")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    parser.add_argument("--k8s", type=Path, default=K8S, help="the deploy/k8s directory")
    parser.add_argument("targets", nargs="*", default=TARGETS, help="kustomizations under it")
    args = parser.parse_args(argv)
    if shutil.which(args.kustomize) is None:
        print(f"kustomize not found at {args.kustomize}: run `make install`", file=sys.stderr)
        return 2
    problems = check(args.kustomize, args.kubernetes_version, args.k8s, args.targets)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
