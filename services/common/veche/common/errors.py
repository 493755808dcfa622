"""The problem+json (RFC 9457) error hierarchy and the handlers that render it."""

import asyncio
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger("veche.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """A domain error with a stable `code`; rendered as problem+json."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(Problem):
    status, code, title = 400, "bad_request", "Bad request"


class InvalidParticipantId(BadRequest):
    code, title = "invalid_participant_id", "Invalid X-Participant-ID"


class InvalidJson(BadRequest):
    code, title = "invalid_json", "Body is not a JSON object"


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Forbidden"


class NotAParticipant(Forbidden):
    code, title = "not_a_participant", "Not a participant of this room"


class NotHost(Forbidden):
    code, title = "not_host", "Only the host may do this"


class Banned(Forbidden):
    code, title = "banned", "Removed from this room"


class RoomLocked(Forbidden):
    code, title = "room_locked", "Room is locked"


class LobbyDenied(Forbidden):
    code, title = "lobby_denied", "A host denied entry to this room"


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class RoomNotFound(NotFound):
    code, title = "room_not_found", "Room not found"


class ParticipantNotFound(NotFound):
    code, title = "participant_not_found", "Participant not found"


class LobbyRequestNotFound(NotFound):
    code, title = "request_not_found", "Lobby request not found"


class MethodNotAllowed(Problem):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class RoomFull(Conflict):
    code, title = "room_full", "Room is full"


class RoomEnded(Conflict):
    code, title = "room_ended", "Room has ended"


class LastHost(Conflict):
    code, title = "last_host", "The room's only host"


class AlreadyResolved(Conflict):
    code, title = "already_resolved", "The lobby request was answered already"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload_too_large", "Payload too large"


class ValidationFailed(Problem):
    status, code, title = 422, "validation_error", "Validation failed"

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.extra = {"errors": errors}


class RateLimited(Problem):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class Unavailable(Problem):
    status, code, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def _sqlalchemy_exc() -> Any:
    """sqlalchemy.exc where the service has SQLAlchemy (rooms, janitor); None elsewhere."""
    try:
        import sqlalchemy.exc
    except ImportError:
        return None
    return sqlalchemy.exc


async def send_problem(send: Send, problem: Problem) -> None:
    body = json.dumps(problem.body()).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# SQLSTATEs of a PostgreSQL that cannot serve right now: connection exceptions (class 08),
# admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08",)
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}


def _unavailable_sqlstate(exc: object) -> bool:
    state = getattr(exc, "sqlstate", None)
    if not isinstance(state, str):
        return False
    return state in _UNAVAILABLE_SQLSTATES or state.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)


def is_dependency_error(exc: BaseException) -> bool:
    """True when the exception means PostgreSQL, Redis or NATS could not be reached in time."""
    import redis.exceptions

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return True
    # Redis at its maxmemory (noeviction) refuses writes: the dependency cannot serve, a 503.
    if isinstance(exc, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)):
        return True
    sqlalchemy_exc = _sqlalchemy_exc()
    if sqlalchemy_exc is not None:
        if isinstance(exc, sqlalchemy_exc.DBAPIError) and (
            exc.connection_invalidated or isinstance(exc, sqlalchemy_exc.InterfaceError)
        ):
            return True
        if isinstance(exc, sqlalchemy_exc.OperationalError | sqlalchemy_exc.TimeoutError):
            return True
        # The server refuses or drops the connection (shutting down, starting up, too many
        # clients): class 08 connection exceptions and 57P01-57P03, whatever class the driver
        # wrapped them in.
        if isinstance(exc, sqlalchemy_exc.DBAPIError) and _unavailable_sqlstate(exc.orig):
            return True
    if _unavailable_sqlstate(exc):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError)):
        return True
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return is_dependency_error(cause)
    return False


def unexpected_problem(exc: BaseException, method: str, path: str, retry_after: int) -> Problem:
    """What an exception nothing else handled is answered with: 503 when a dependency failed,
    500 otherwise (logged with its traceback, which never reaches the answer)."""
    if is_dependency_error(exc):
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return Unavailable("A backing service is unavailable", retry_after)
    log.exception("unhandled error on %s %s", method, path)
    return Problem("Unexpected error")


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


_NOT_AN_OBJECT = {"dict_type", "model_type", "model_attributes_type", "json_invalid", "missing"}


def validation_problem(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid" or (loc == ("body",) and err.get("type") in _NOT_AN_OBJECT):
            return InvalidJson()
    fields = [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors]
    return ValidationFailed(fields)


def install_error_handlers(app: FastAPI, retry_after: int = 5) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return problem_response(NotFound("No such resource"))
        if exc.status_code == 405:
            return problem_response(MethodNotAllowed())
        if exc.status_code == 400:
            # FastAPI's "There was an error parsing the body": invalid UTF-8, nesting deeper
            # than the parser goes, an integer of thousands of digits. Not JSON we can read.
            return problem_response(InvalidJson("The body is not valid JSON"))
        generic = Problem(str(exc.detail))
        generic.status, generic.code, generic.title = exc.status_code, "http_error", str(exc.detail)
        return problem_response(generic)

    async def _dependency(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(unexpected_problem(exc, request.method, request.url.path, retry_after))

    # Registered per class (not only for Exception) so the answer comes from the exception
    # middleware and the error is not re-raised to the server as a crash.
    import redis.exceptions

    sqlalchemy_exc = _sqlalchemy_exc()
    for cls in (
        redis.exceptions.RedisError,
        *([sqlalchemy_exc.SQLAlchemyError] if sqlalchemy_exc is not None else []),
        OSError,
        TimeoutError,
    ):
        app.add_exception_handler(cls, _dependency)  # type: ignore[arg-type]
    try:
        import nats.errors

        app.add_exception_handler(nats.errors.Error, _dependency)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover
        pass
    app.add_exception_handler(Exception, _dependency)  # type: ignore[arg-type]
