"""A stack whose media library lives in the test's own directory, and helpers shared by the media tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ready_stack


def media_stack(database, temporal_env, data_dir: Path, **overrides):
    return ready_stack(database, temporal_env, data_dir=data_dir, immediate_publish_wait_seconds=30, **overrides)


@pytest.fixture
async def mstack(database, temporal_env, tmp_path):
    async with media_stack(database, temporal_env, tmp_path / "data") as stack:
        yield stack


def stored_files(stack) -> list[Path]:
    """Every file under the local media root, spool directory included."""
    root = stack.settings.data_dir / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def create(c, filename: str, content_type: str, **extra) -> dict:
    r = await c.post("/v1/media", json={"filename": filename, "content_type": content_type, **extra})
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def upload(c, media: dict, data: bytes, **kw):
    return await c.put(media["upload_url"], content=data, **kw)
