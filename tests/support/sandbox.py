"""A sandbox server for adapter tests: sandbox platforms plus a tiny media host."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import FastAPI, HTTPException, Response

from adapters.sandbox import sandbox_router
from tests.support.media import SAMPLES
from tests.support.servers import serve


def sandbox_with_media(platforms: list[str]) -> FastAPI:
    app = FastAPI()
    app.include_router(sandbox_router(platforms), prefix="/sandbox")

    @app.get("/media/{name}")
    def media(name: str, size: int | None = None) -> Response:
        if name not in SAMPLES:
            raise HTTPException(404)
        content_type, make = SAMPLES[name]
        body = make(size) if size else make()
        return Response(body, media_type=content_type)

    return app


@contextlib.contextmanager
def sandbox_server(platforms: list[str]) -> Iterator[str]:
    """Yields the base URL; the sandbox is at `<base>/sandbox`, media at `<base>/media/<name>`."""
    with serve(sandbox_with_media(platforms)) as base:
        yield base
