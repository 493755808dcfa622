"""deploy/k8s/monitoring/ against the code and the docs, with no server: every `veche_*` series
the alerts and the dashboard read is one a service defines; every alert has a runbook that
exists in docs/operations.md; the dashboard is valid, with unique panel ids; the PromQL is
plausible (balanced, known functions, well-formed matchers and ranges); every service the base
deploys is scraped; the kustomization's files, Secret keys and images hold together."""

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "k8s" / "monitoring"
BASE = ROOT / "deploy" / "k8s" / "base"
OPERATIONS = ROOT / "docs" / "operations.md"
RUNBOOK_PREFIX = "https://github.com/example/veche/blob/main/docs/operations.md#"

# Series from outside veche's code that the rules and the dashboard may read.
FOREIGN_SERIES = {"up", "redis_memory_used_bytes", "redis_memory_max_bytes"}
# Suffixes Prometheus adds to a histogram's or a counter's name.
SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total")
# PromQL functions and aggregations the rules may call.
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "ceil", "changes", "clamp_max",
    "clamp_min", "count", "count_over_time", "delta", "deriv", "floor", "histogram_quantile",
    "increase", "irate", "label_replace", "max", "max_over_time", "min", "min_over_time",
    "predict_linear", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar",
    "sort", "sort_desc", "sum", "sum_over_time", "time", "topk", "bottomk", "vector",
}  # fmt: skip
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}


def defined_metrics() -> set[str]:
    """The names given to prometheus_client's Counter, Gauge, Histogram and Summary anywhere in
    the services and the web server."""
    sources = [*ROOT.glob("services/*/veche/**/*.py"), ROOT / "web" / "server.py"]
    pattern = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    return {name for path in sources for name in pattern.findall(path.read_text())}


def is_defined(name: str, defined: set[str]) -> bool:
    if name in defined:
        return True
    return any(name.endswith(suffix) and name[: -len(suffix)] in defined for suffix in SUFFIXES)


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())  # type: ignore[no-any-return]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def all_exprs() -> list[str]:
    return [rule["expr"] for rule in rules()] + dashboard_exprs()


def strip_strings(expr: str) -> str:
    """The expression with every quoted string emptied (their contents may hold anything)."""
    out, quote, escaped = [], "", False
    for char in expr:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
                out.append(char)
            continue
        if char in "\"'`":
            quote = char
        out.append(char)
    assert not quote, f"an unclosed string in {expr!r}"
    return "".join(out)


def series_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are neither functions, keywords,
    label names (inside braces or a by/without list), nor durations."""
    bare = strip_strings(expr)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)  # label matchers
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # grouping labels
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", bare):  # not a duration's unit
        word = match.group()
        after = bare[match.end() :].lstrip()
        if word in KEYWORDS or (word in FUNCTIONS and after.startswith("(")):
            continue
        names.add(word)
    return names


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lowercase, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            text = heading.group(1).strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return found


def test_every_veche_series_of_the_rules_and_the_dashboard_is_defined_by_a_service():
    defined = defined_metrics()
    assert "veche_http_request_seconds" in defined and "veche_chat_delivery_seconds" in defined
    used = {name for expr in all_exprs() for name in series_names(expr)}
    assert used, "no series found"
    unknown = sorted(n for n in used if n not in FOREIGN_SERIES and not is_defined(n, defined))
    assert not unknown, f"series no service defines: {unknown}"
    assert all(n.startswith("veche_") for n in used - FOREIGN_SERIES)


def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists():
    documented = anchors(OPERATIONS.read_text())
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "two alerts share a name"
    expected = {
        "VecheHighErrorRate", "VecheHighLatency", "VecheConsumerLag", "VecheOutboxBacklog",
        "VecheRedisMemoryHigh", "VecheLiveKitDown", "VecheChatSocketsHigh", "VecheNoOutboxLeader",
    }  # fmt: skip
    assert expected <= set(names)
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), url
        anchor = url.removeprefix(RUNBOOK_PREFIX)
        assert anchor == rule["alert"].lower(), url
        assert anchor in documented, f"docs/operations.md has no heading for #{anchor}"


def test_the_alerts_named_by_the_issue_read_what_they_should():
    by_name = {rule["alert"]: rule["expr"] for rule in rules()}
    assert (
        "veche_http_requests_total" in by_name["VecheHighErrorRate"]
        and '"5.."' in by_name["VecheHighErrorRate"]
    )
    assert "histogram_quantile(0.99" in by_name["VecheHighLatency"]
    assert "veche_http_request_seconds_bucket" in by_name["VecheHighLatency"]
    assert "veche_consumer_lag" in by_name["VecheConsumerLag"]
    assert "veche_outbox_oldest_unpublished_seconds" in by_name["VecheOutboxBacklog"]
    assert "redis_memory_used_bytes" in by_name["VecheRedisMemoryHigh"]
    assert "redis_memory_max_bytes" in by_name["VecheRedisMemoryHigh"]
    assert (
        'up{job=~".*livekit.*"} == 0' in by_name["VecheLiveKitDown"]
        and "absent(" in by_name["VecheLiveKitDown"]
    )
    assert "veche_chat_sockets" in by_name["VecheChatSocketsHigh"]
    assert "max(veche_outbox_leading) == 0" in by_name["VecheNoOutboxLeader"]


def test_the_promql_is_plausible():
    for expr in all_exprs():
        bare = strip_strings(expr)
        stack: list[str] = []
        pairs = {")": "(", "}": "{", "]": "["}
        for char in bare:
            if char in "({[":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], f"unbalanced {char!r} in {expr!r}"
        assert not stack, f"unclosed {stack} in {expr!r}"
        # Every call is a known function or aggregation (or a grouping keyword).
        for call in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*\(", bare):
            assert call in FUNCTIONS or call in KEYWORDS, f"unknown function {call}() in {expr!r}"
        # Label matchers: name op "value", comma-separated.
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            for matcher in filter(None, (m.strip() for m in matchers.split('",'))):
                assert re.fullmatch(r'[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"[^"]*"?', matcher), (
                    matcher,
                    expr,
                )
        # Ranges: a duration, or a subquery's range:step.
        for window in re.findall(r"\[([^\]]*)\]", bare):
            assert re.fullmatch(r"\d+[smhdwy](:\d+[smhdwy])?", window), (window, expr)
        # A range only follows a selector or a subquery, and every range function gets one.
        for function in ("rate", "irate", "increase", "min_over_time", "max_over_time", "avg_over_time"):
            for argument in re.findall(rf"\b{function}\(([^()]*)\)", bare):
                assert "[" in argument, f"{function}() without a range in {expr!r}"
        for quantile in re.findall(r"histogram_quantile\(\s*([0-9.]+)\s*,", bare):
            assert 0 <= float(quantile) <= 1, expr
        if "histogram_quantile(" in bare:
            assert "_bucket" in bare and re.search(r"by \([^)]*\ble\b", bare), f"le is lost in {expr!r}"


def test_the_dashboard_is_valid_with_unique_panel_ids_and_the_asked_for_panels():
    board = dashboard()
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "two panels share an id"
    assert all(isinstance(i, int) for i in ids)
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"].strip("${}") in variables, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    text = " ".join(dashboard_exprs())
    for series in (
        "veche_http_requests_total",  # request and error rate
        "veche_http_request_seconds_bucket",  # p50 / p99
        "veche_chat_sockets",
        "veche_chat_delivery_seconds_bucket",
        "veche_consumer_lag",
        "veche_outbox_pending",
        "veche_outbox_leading",
        "veche_postgres_pool_in_use",
        "veche_postgres_pool_waiting",
        "veche_postgres_query_seconds_bucket",
        "redis_memory_used_bytes",
    ):
        assert series in text, series
    assert "histogram_quantile(0.5," in text and "histogram_quantile(0.99," in text


def test_every_deployed_service_is_scraped_on_a_port_it_has():
    monitors = list(yaml.safe_load_all((MONITORING / "podmonitors.yaml").read_text()))
    scraped: dict[str, str] = {}
    for monitor in monitors:
        assert monitor["kind"] == "PodMonitor"
        selector = monitor["spec"]["selector"]
        names = list(selector.get("matchLabels", {}).values())
        for expression in selector.get("matchExpressions", []):
            assert expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In"
            names += expression["values"]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        scraped.update(dict.fromkeys(names, endpoint["port"]))
    deployed = {}
    for path in [*BASE.glob("*.yaml"), *(ROOT / "deploy" / "k8s" / "livekit").glob("*.yaml")]:
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "Deployment":
                continue
            template = document["spec"]["template"]
            if template["metadata"].get("annotations", {}).get("prometheus.io/scrape") != "true":
                continue
            name = template["metadata"]["labels"]["app.kubernetes.io/name"]
            ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            deployed[name] = ports
    assert {"rooms", "chat", "media-token", "janitor", "web"} <= set(deployed)
    for name, ports in deployed.items():
        assert name in scraped, f"{name} exports metrics but no PodMonitor scrapes it"
        assert scraped[name] in ports, f"{name} has no port {scraped[name]!r}"


def test_the_kustomization_holds_together():
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (MONITORING / resource).is_file(), resource
    (dashboards,) = kustomization["configMapGenerator"]
    assert dashboards["options"]["labels"] == {"grafana_dashboard": "1"}
    assert all((MONITORING / f).is_file() for f in dashboards["files"])
    # The Secret: read from a git-ignored env file whose committed example has every key the
    # exporters ask for.
    (secret,) = kustomization["secretGenerator"]
    (env_file,) = secret["envs"]
    example = MONITORING / (env_file + ".example")
    keys = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    ignored = (MONITORING / Path(env_file).parent / ".gitignore").read_text().splitlines()
    assert "*.env" in ignored and "!*.env.example" in ignored
    exporters = list(yaml.safe_load_all((MONITORING / "exporters.yaml").read_text()))
    wanted = set()
    for document in exporters:
        if document["kind"] != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{image} is not pinned by a version tag"
            for env in container.get("env", []):
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["name"]
                wanted.add(ref["key"])
    assert {d["metadata"]["name"] for d in exporters if d["kind"] == "Service"} == {
        "redis-exporter",
        "postgres-exporter",
    }
    assert wanted and wanted <= keys, wanted - keys
