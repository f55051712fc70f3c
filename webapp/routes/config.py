"""GET /health (liveness) and GET /api/config (what the UI needs to know before its first page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from meteoflow.contracts import AppHealth, ConfigResponse
from webapp.routes.common import LimitsDep, SettingsDep

router = APIRouter(tags=["config"])


@router.get("/health", response_model=AppHealth, summary="Liveness: 200 while the process serves")
def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "service": "webapp",
            "frontend_built": (request.app.state.dist_dir / "index.html").is_file()}


@router.get("/api/config", response_model=ConfigResponse,
            summary="Refresh interval and freshness thresholds the UI uses")
def config(settings: SettingsDep, limits: LimitsDep) -> dict[str, Any]:
    return {
        "refresh_seconds": settings.webapp_refresh_seconds,
        "thresholds": limits.model_dump(),
        "source": settings.effective_source,
        "expected_interval_seconds": settings.effective_interval_seconds,
    }
