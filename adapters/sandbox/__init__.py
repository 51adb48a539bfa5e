"""The sandbox platforms, mounted under `/sandbox/<platform>/...`.

`PLATFORM_MODULES` is the one explicit list of sandbox platform modules. Each
module exposes `router`, an APIRouter whose paths are the platform's own
(after the host), for example `/2/tweets` for X.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from adapters.sandbox.core import WORLD

PLATFORM_MODULES: dict[str, str] = {
    "twitter": "adapters.sandbox.twitter",
    "linkedin": "adapters.sandbox.linkedin",
    "bluesky": "adapters.sandbox.bluesky",
    "youtube": "adapters.sandbox.youtube",
    "tiktok": "adapters.sandbox.tiktok",
    "instagram": "adapters.sandbox.instagram",
    "threads": "adapters.sandbox.threads",
    "facebook": "adapters.sandbox.facebook",
    "pinterest": "adapters.sandbox.pinterest",
}


class FaultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str
    kind: Literal["http_5xx", "rate_limit", "latency", "expire_token", "revoke_token",
                  "reject_content", "drop_after_accept", "stale_listing"]
    account: str | None = None
    path_contains: str | None = None
    method: str | None = None
    times: int | None = Field(default=1, ge=1)
    probability: float = Field(default=1.0, gt=0, le=1)
    status: int = Field(default=503, ge=500, le=599)
    retry_after: float = Field(default=1.0, ge=0)
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    stale_ms: int = Field(default=0, ge=0, le=3_600_000)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    display_name: str | None = None
    password: str | None = None


def control_router() -> APIRouter:
    """Fault injection and inspection, for tests and the tour."""
    r = APIRouter(prefix="/_control", tags=["sandbox control"])

    @r.post("/faults", status_code=201)
    def add_fault(body: FaultIn) -> dict[str, Any]:
        if body.platform not in PLATFORM_MODULES:
            raise HTTPException(404, "unknown platform")
        return WORLD.add_fault(**body.model_dump()).public()

    @r.get("/faults")
    def list_faults() -> list[dict[str, Any]]:
        return [f.public() for f in WORLD.faults.values()]

    @r.delete("/faults", status_code=204)
    def clear_faults() -> None:
        WORLD.faults.clear()

    @r.post("/reset", status_code=204)
    def reset(platform: str | None = None) -> None:
        WORLD.reset(platform)

    @r.post("/{platform}/users", status_code=201)
    def add_user(platform: str, body: UserIn) -> dict[str, Any]:
        if platform not in PLATFORM_MODULES:
            raise HTTPException(404, "unknown platform")
        user = WORLD.user_for(platform, body.username, display_name=body.display_name)
        if body.password is not None:
            user.password = body.password
        return {"id": user.id, "username": user.username, "display_name": user.display_name}

    @r.get("/{platform}/posts")
    def posts(platform: str, account: str | None = None) -> list[dict[str, Any]]:
        if platform not in PLATFORM_MODULES:
            raise HTTPException(404, "unknown platform")
        return WORLD.posts(platform, account)

    return r


def sandbox_router(platforms: list[str] | None = None) -> APIRouter:
    """All (or some) sandbox platforms plus the control API, to mount at `/sandbox`."""
    router = APIRouter()
    router.include_router(control_router())
    for name in platforms or list(PLATFORM_MODULES):
        module = importlib.import_module(PLATFORM_MODULES[name])
        router.include_router(module.router, prefix=f"/{name}")
    return router


def sandbox_app(platforms: list[str] | None = None) -> FastAPI:
    """A standalone app serving the sandbox at `/sandbox` (tests, or a separate process)."""
    app = FastAPI(title="Herald sandbox platforms", docs_url=None, redoc_url=None)
    app.include_router(sandbox_router(platforms), prefix="/sandbox")
    return app
