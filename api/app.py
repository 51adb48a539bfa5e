"""The FastAPI front door: `create_app()` wires routers, errors, middleware and lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.dashboard import routes as dashboard
from api.dialect_m import routes as dialect_m
from api.middleware import RequestContextMiddleware
from api.routers import (
    accounts,
    api_keys,
    connect_sessions,
    health,
    hosted,
    logs,
    media,
    platform_credentials,
    platforms,
    posts,
    profiles,
    users,
    webhooks,
    workspace,
)
from api.state import AppState
from observability import FASTAPI_TELEMETRY, gc_pauses, instrument_app
from store import crypto
from store.db import Database
from store.settings import Settings, get_settings

ROUTERS = (health.router, workspace.router, api_keys.router, profiles.router, platform_credentials.router,
           accounts.router, users.router, platforms.router, posts.social_posts, posts.posts_alias,
           media.router, media.transfer,
           connect_sessions.router, hosted.router, dialect_m.router, webhooks.router, logs.router,
           dashboard.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        crypto.configure(settings.encryption_key_list())
        state = AppState(settings=settings, db=Database(settings.sqlalchemy_url))
        app.state.herald = state
        state.start()
        gc_pauses.watch()
        gc_pauses.freeze_startup()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="Herald",
        version="0.1.0",
        summary="Self-hosted unified social publishing API",
        description="Connect end users' social accounts through a hosted OAuth flow and publish or schedule "
                    "posts to many platforms at once. Authenticate with `Authorization: Bearer <api key>`.",
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,
    )
    errors.install(app)
    app.add_middleware(RequestContextMiddleware)
    instrument_app(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    if settings.sandbox_enabled:
        from adapters.sandbox import sandbox_router

        app.include_router(sandbox_router(), prefix="/sandbox", include_in_schema=False)
    return app
