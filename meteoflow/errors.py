"""Pydantic's validation errors as text a person reads: `field.path[0]: message (got <value>)`.

Every boundary (a Kafka record, a settings variable, an alert rules file, a regions file, an
HTTP body) words its errors through here, so a reason reads the same wherever it shows up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from pydantic import ValidationError

MAX_REASON_ERRORS = 10
MAX_PATH_CHARS = 80
# Where FastAPI found a request value: the first element of its error locations.
REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
NOT_JSON_BODY = "must be a JSON object sent with Content-Type: application/json"


@dataclass(frozen=True)
class FieldIssue:
    """One error of a validation: which field, what is wrong, and a short view of what it held."""

    field: str
    message: str
    kind: str  # pydantic's error type ("missing", "extra_forbidden", "value_error", ...)
    input: Any = None
    got: str | None = None  # short repr of the input; None when there is nothing to show
    where: str | None = None  # for a request: body, query, path, header or cookie

    @property
    def detail(self) -> str:
        return f"{self.message} (got {self.got})" if self.got is not None else self.message

    @property
    def text(self) -> str:
        return f"{self.field}: {self.detail}"


def field_path(loc: Iterable[Any], prefix: str = "") -> str:
    """Pydantic's loc ('data', 3, 'ds') as 'data[3].ds', after `prefix` (e.g. 'series[4]')."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def short_repr(value: Any, limit: int = 60) -> str:
    """repr bounded to `limit` characters; a huge or deeply nested value is not repr'd at all (costly, or raises)."""
    if isinstance(value, (dict, list)) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
    try:
        shown = repr(value)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def field_errors(errors: ValidationError | Sequence[dict], *, default_field: str = "value", prefix: str = "",
                 request: bool = False) -> list[FieldIssue]:
    """The errors of a ValidationError (or pydantic/FastAPI error dicts), each named by its field path.

    `request`: the locations start with where FastAPI found the value (body, query, ...), which is
    kept in `where` rather than in the path. `default_field` names an error about the whole value."""
    if isinstance(errors, ValidationError):
        errors = errors.errors()
    found = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        where = None
        if request and loc and loc[0] in REQUEST_PARTS:
            where, loc = loc[0], loc[1:]
        # A hostile record can carry a key of megabytes: the path is bounded like the value.
        field = field_path(loc, prefix)[:MAX_PATH_CHARS] or where or default_field
        kind = str(err.get("type", ""))
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        value = err.get("input")
        got = None if kind == "missing" or "input" not in err else short_repr(value)
        if kind == "missing":
            message = "missing"
        elif kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "")
            field, message, got = where or field, f"not valid JSON: {reason}".rstrip(": "), None
        elif request and isinstance(value, (bytes, bytearray)):
            # FastAPI hands over the raw bytes when the body was not declared as JSON.
            message, got = NOT_JSON_BODY, None
        found.append(FieldIssue(field, message, kind, value, got, where))
    return found


def describe_errors(errors: ValidationError | Sequence[dict], *, default_field: str = "record",
                    limit: int = MAX_REASON_ERRORS) -> str:
    """One line naming each bad field (the first `limit`), e.g. `temp: missing; lat: ... (got 91.5)`."""
    described = field_errors(errors, default_field=default_field)
    parts = [e.text for e in described[:limit]]
    if len(described) > limit:
        parts.append(f"... and {len(described) - limit} more errors")
    return "; ".join(parts)
