"""Validators the contracts share: plausible UTC times, text without control characters, patterns."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Mapping

from pydantic import AfterValidator, StringConstraints

def plausible_utc(value: datetime) -> datetime:
    """An aware UTC time (naive means UTC) between 1970 and 9000, or ValueError."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is not a representable time") from None
    if not datetime(1970, 1, 1, tzinfo=timezone.utc) <= value < datetime(9000, 1, 1, tzinfo=timezone.utc):
        raise ValueError("is out of range")
    return value


MAX_COMMENT_CHARS = 1000
MAX_AUTHOR_CHARS = 100

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters but tab and newline


def _matching(pattern: str, what: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value
    return AfterValidator(check)


def _one_line(value: str) -> str:
    if _CONTROL.search(value) or "\n" in value or "\t" in value:
        raise ValueError("must be one line of text, without control characters")
    return value


def _text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


UtcTime = Annotated[datetime, AfterValidator(plausible_utc)]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=64),
                     _matching(r"[a-z][a-z0-9_]*", "a rule name (lowercase letters, digits and _)")]
# What an incident is about: a region id (the schema's characters), a service, a consumer, a store.
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128),
                    _matching(r"[A-Za-z0-9_.:-]+", "a region id or another subject (letters, digits and _ . : -)")]
IncidentId = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_AUTHOR_CHARS),
                   AfterValidator(_one_line)]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_COMMENT_CHARS),
                    AfterValidator(_text)]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def dig(doc: Mapping[str, Any] | None, path: str) -> Any:
    """Read `a.b.c` from an Elasticsearch _source whether it was written nested
    ({"a": {"b": ...}}) or with dotted keys ({"a.b": ...}), as ECS log lines are."""
    if not isinstance(doc, Mapping):
        return None
    if path in doc:
        return doc[path]
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in doc:
            found = dig(doc[head], ".".join(parts[i:]))
            if found is not None:
                return found
    return None
