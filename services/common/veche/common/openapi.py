"""Makes every service's OpenAPI document describe its errors as they are: problem+json."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is the stable machine-readable part.",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

# Answers any operation may give, whatever it does: bad header or body, body too large,
# rate limited, a dependency down or too slow.
COMMON_ERRORS = {
    "400": "invalid_participant_id or invalid_json",
    "413": "payload_too_large",
    "422": "validation_error",
    "429": "rate_limited (with Retry-After)",
    "503": "unavailable (with Retry-After)",
}
_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_METHODS = {"get", "post", "put", "delete", "patch"}


def install_problem_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = PROBLEM_SCHEMA
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if method not in _METHODS:
                    continue
                responses = operation.setdefault("responses", {})
                for status, description in COMMON_ERRORS.items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = _PROBLEM_CONTENT
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def error_responses(errors: dict[int, str]) -> dict[int | str, dict[str, object]]:
    """`responses=` of a route: each status with the codes it may carry (rendered as
    problem+json by install_problem_openapi)."""
    return {status: {"description": codes} for status, codes in errors.items()}
