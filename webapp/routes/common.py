"""What the routers share: their dependencies (settings, store, clock, freshness thresholds, a
degradable read), the 422 they raise themselves, and the error responses they declare."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Callable

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

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


def attempt_read(fn: Callable[[], Any], default: Any) -> tuple[Any, str | None]:
    """Run one read of a page; a failing source becomes a message, not a 500."""
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - reported to the UI and the log
        log.warning("status read failed: %s", exc)
        return default, f"{type(exc).__name__}: {exc}"[:300]


def get_attempt(request: Request) -> Attempt:
    """attempt_read of an Elasticsearch read (every degradable read is one), its failure counted."""
    metrics = request.app.state.metrics

    def attempt(fn: Callable[[], Any], default: Any) -> tuple[Any, str | None]:
        result, error = attempt_read(fn, default)
        if error is not None:
            metrics.store_errors.labels("elasticsearch").inc()
        return result, error
    return attempt


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
LimitsDep = Annotated[Thresholds, Depends(get_limits)]
AttemptDep = Annotated[Attempt, Depends(get_attempt)]


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
