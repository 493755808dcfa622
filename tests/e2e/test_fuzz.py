"""A short schemathesis pass per service through the gateway: no 5xx, no answer that breaks
the service's own OpenAPI document. `make fuzz` runs the long one."""

import tempfile
from pathlib import Path

import pytest

from tests.fuzz.fuzz import SERVICES, fuzz_service

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("service", SERVICES)
def test_fuzzing_finds_no_server_error_and_no_schema_violation(stack, service):
    result = fuzz_service(stack, service, max_examples=8, report_dir=Path(tempfile.mkdtemp()))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


async def test_hostile_payloads_get_clean_4xx_answers_and_frames_clean_closes(stack):
    from tests.fuzz.hostile import hostile_failures

    failures = await hostile_failures(stack.url)
    assert failures == [], "\n".join(failures[:30])
