"""Schemathesis against each service's own OpenAPI document, sent through the gateway.

`make fuzz` runs it long; the test suite runs a short pass of the same (tests/e2e/test_fuzz.py).
Checks: no 5xx answer, and every answer conforms to the schema of its operation. Then the
hostile payload classes of tests/fuzz/hostile.py, over HTTP and the chat WebSocket."""

import subprocess
import sys
from pathlib import Path

SERVICES = ("rooms", "chat", "media-token", "janitor")
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
HEALTH = "^/(healthz|readyz|metrics)$"


def fuzz_service(  # type: ignore[no-untyped-def]
    stack, service: str, max_examples: int, report_dir: Path
) -> subprocess.CompletedProcess[str]:
    schema = f"http://127.0.0.1:{stack.ports[service]}/openapi.json"
    # The janitor has only its probes; they are reached through the gateway under /_/janitor.
    base = f"{stack.url}/_/{service}" if service == "janitor" else stack.url
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        schema,
        "--url",
        base,
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--request-timeout",
        "15",
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--generation-deterministic",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir / service),
    ]
    if service != "janitor":
        cmd += ["--exclude-path-regex", HEALTH]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    from veche.local.isolated import isolated_stack

    max_examples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    env = {
        "RATE_LIMITS_ENABLED": "false",
        "GATEWAY_RATE_AVERAGE": "100000",
        "GATEWAY_RATE_BURST": "100000",
        "LOG_LEVEL": "WARNING",
    }
    failed = []
    with isolated_stack("fuzz", env) as stack:
        for service in SERVICES:
            result = fuzz_service(stack, service, max_examples, root / "test-artifacts" / "fuzz")
            print(f"=== {service}: exit {result.returncode}\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
            if result.returncode != 0:
                failed.append(service)
        import asyncio

        from tests.fuzz.hostile import hostile_failures

        hostile = asyncio.run(hostile_failures(stack.url))
        print(f"=== hostile payloads (HTTP and WebSocket): {len(hostile)} failures")
        for line in hostile:
            print("  " + line)
        if hostile:
            failed.append("hostile payloads")
    print("fuzz failures in: " + ", ".join(failed) if failed else "fuzz: no failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
