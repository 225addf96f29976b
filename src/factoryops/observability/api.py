"""Route: the platform health page of the root console (GET /api/v1/root/health)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from factoryops.observability.schemas import PlatformHealthOut
from factoryops.observability.service import platform_health
from factoryops.tenancy.deps import platform_root
from factoryops.tenancy.service import Principal

root = APIRouter(prefix="/root", tags=["platform health"])


@root.get(
    "/health",
    response_model=PlatformHealthOut,
    summary="Platform health: dependencies, processes, job queue, telemetry figures, open alerts (root)",
)
def get_platform_health(request: Request, _: Principal = Depends(platform_root)) -> PlatformHealthOut:
    platform = request.app.state.platform
    return platform_health(platform.settings, platform.db)


routers = [root]
