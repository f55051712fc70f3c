"""What the routers share: their dependencies (settings, store, clock, freshness thresholds, a
degradable read), the 422 they raise themselves, and the error responses they declare."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Callable

from fastapi import Depends, HTTPException, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from meteoflow.auth import bearer_token
from meteoflow.errors import field_errors
from meteoflow.contracts import ErrorBody, ValidationErrorBody, plausible_utc
from meteoflow.freshness import Thresholds
from meteoflow.settings import Settings
from webapp.store import Store

log = logging.getLogger("webapp")

# Declared in each route's `responses`, so the OpenAPI schema (and the generated types) show them.
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorBody, "description": "Invalid request: the refused fields, where and why"}}
STORE_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "MongoDB or Elasticsearch is unavailable"}}

WRITE_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "The server has a write token and the request lacks it, or it is wrong"}}


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    return {404: {"model": ErrorBody, "description": f"Unknown {what}"}}


# --- dependencies: the app's state, set once by webapp.app.create_app ----------------------------
def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """The app's data adapter; created at its first use, so the app starts while the stores are down."""
    state = request.app.state
    if state.store is None:
        state.store = Store(state.settings)
    return state.store


def get_clock(request: Request) -> Callable[[], datetime]:
    return request.app.state.clock


def get_limits(request: Request) -> Thresholds:
    return request.app.state.limits


Attempt = Callable[[Callable[[], Any], Any], tuple[Any, str | None]]


def unavailable(source: str, exc: BaseException) -> str:
    """What a client is told of a failed read: the source and the kind of failure, never the
    exception's text (it can carry URLs, hosts, index names or a server's error body): that goes to the log."""
    return f"{source} is unavailable ({type(exc).__name__})"


def attempt_read(fn: Callable[[], Any], default: Any, source: str = "Elasticsearch") -> tuple[Any, str | None]:
    """Run one read of a page; a failing source becomes a message, not a 500."""
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - the full text to the log, a summary to the UI
        log.warning("%s read failed: %s", source, exc)
        return default, unavailable(source, exc)


def get_attempt(request: Request) -> Attempt:
    """attempt_read of an Elasticsearch read (every degradable read is one), its failure counted."""
    metrics = request.app.state.metrics

    def attempt(fn: Callable[[], Any], default: Any) -> tuple[Any, str | None]:
        result, error = attempt_read(fn, default)
        if error is not None:
            metrics.store_errors.labels("elasticsearch").inc()
        return result, error
    return attempt


# Declared so the OpenAPI schema (and /api/docs' Authorize button) shows how writes authenticate;
# require_writer reads the header itself, with the same parser as the forecasting API's key check.
WRITE_TOKEN = HTTPBearer(auto_error=False, scheme_name="WriteToken",
                         description="METEOFLOW_WEBAPP_WRITE_TOKEN: required by the writes when the server sets it")


def require_writer(request: Request,
                   _: Annotated[HTTPAuthorizationCredentials | None, Security(WRITE_TOKEN)] = None) -> None:
    """401 unless the server has no write token or the request carries it (constant-time compare)."""
    key = request.app.state.write_key
    if key is None:
        return
    presented = bearer_token(request.headers.get("authorization"))
    if key.matches(presented):
        return
    log.warning("write refused: %s %s (%s)", request.method, request.url.path,
                "no token" if presented is None else "wrong token")
    message = ("this write needs the web app's write token: send it as Authorization: Bearer <token>"
               if presented is None else "the write token is wrong")
    raise HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
LimitsDep = Annotated[Thresholds, Depends(get_limits)]
AttemptDep = Annotated[Attempt, Depends(get_attempt)]
WRITER = [Depends(require_writer)]  # a write route's `dependencies`


# --- the 422s a route raises itself, in the shape of FastAPI's own ---------------------------------
def invalid(where: str, field: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 naming the field, in the same shape as FastAPI's own validation errors."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error",
                                    "input": jsonable_encoder(value)}])


def as_request_error(exc: ValidationError, rename: dict[str, str] | None = None) -> RequestValidationError:
    """A model built from a valid body can still refuse it (ends_at before starts_at): a 422 naming the field."""
    return RequestValidationError([{"loc": ("body", (rename or {}).get(e.field, e.field)), "msg": e.message,
                                    "type": e.kind, "input": jsonable_encoder(e.input)}
                                   for e in field_errors(exc, default_field="body")])


def query_time(name: str, value: datetime | None) -> datetime | None:
    """A query-string time as aware UTC (no offset means UTC), or a 422 naming it."""
    if value is None:
        return None
    try:
        return plausible_utc(value)
    except ValueError as exc:
        raise invalid("query", name, str(exc), value) from None
