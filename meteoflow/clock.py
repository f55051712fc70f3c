"""The one clock: services take a `clock=` callable (tests pass their own) that defaults to `utc_now`."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(timezone.utc)
