"""`/v1/media`: the media library, and the presigned transfer URLs it hands out.

A client creates a media row, PUTs the bytes to the returned `upload_url`
(no API key: the signature authorises that one upload), and passes the
`media_id` in posts. Platforms and adapters fetch the bytes from a presigned
`download_url`. The transfer routes open database sessions only around their
lookups and writes, never across a transfer.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import update

from api import pagination
from api.deps import PrincipalDep, SessionDep, SettingsDep, StateDep
from api.errors import (
    ERROR_RESPONSES,
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from api.idempotency import IdempotentRoute
from api.ownership import get_owned, scoped
from store.media import (
    MEDIA_TYPES,
    MediaProblem,
    check_signature,
    new_storage_key,
    normalise_hash,
    normalise_type,
    signed_url,
    spool,
)
from store.media_storage import MissingObject, StorageError, storage_for
from store.models import Media, utcnow
from store.settings import Settings

log = logging.getLogger("herald.media")

router = APIRouter(prefix="/v1/media", tags=["media"], responses=ERROR_RESPONSES, route_class=IdempotentRoute)
# The presigned URLs: outside /v1 and without API keys, because whoever holds the URL is the one authorised.
transfer = APIRouter(prefix="/media", include_in_schema=False)


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class MediaCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=128, description="One of: " + ", ".join(MEDIA_TYPES))
    size_bytes: int | None = Field(default=None, ge=1, description="Exact size; the upload must match it")
    content_hash: str | None = Field(default=None, max_length=71,
                                     description="SHA-256 hex digest, optionally prefixed `sha256:`")
    idempotency_key: str | None = Field(default=None, max_length=64)

    @field_validator("content_hash")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        return None if value is None else normalise_hash(value)


class MediaPublic(BaseModel):
    id: str
    media_id: str
    object: str = "media"
    filename: str
    content_type: str
    size_bytes: int | None
    content_hash: str | None
    status: Literal["pending", "uploaded", "deleted"]
    source_url: str | None
    livemode: bool
    created_at: datetime
    uploaded_at: datetime | None
    upload_url: str | None = Field(description="Presigned PUT URL while the media is pending")
    download_url: str | None = Field(description="Presigned GET URL once the media is uploaded")
    expires_at: datetime | None = Field(description="When the URL in this answer stops working")


class MediaOut(BaseModel):
    data: MediaPublic


class MediaList(BaseModel):
    data: list[MediaPublic]
    meta: dict


def public(m: Media, settings: Settings) -> MediaPublic:
    upload_url = download_url = expires_at = None
    if m.status == "pending":
        upload_url, expires_at = signed_url(settings, "upload", m.id)
    elif m.status == "uploaded":
        download_url, expires_at = signed_url(settings, "download", m.id)
    return MediaPublic(id=m.id, media_id=m.id, filename=m.filename, content_type=m.content_type,
                       size_bytes=m.size_bytes, content_hash=m.content_hash, status=m.status,
                       source_url=m.source_url, livemode=m.livemode, created_at=m.created_at,
                       uploaded_at=m.uploaded_at, upload_url=upload_url, download_url=download_url,
                       expires_at=expires_at)


@router.post("", status_code=201, response_model=MediaOut)
async def create_media(body: MediaCreate, principal: PrincipalDep, session: SessionDep,
                       settings: SettingsDep) -> MediaOut:
    content_type = normalise_type(body.content_type)
    if content_type not in MEDIA_TYPES:
        raise ValidationFailed.one("content_type", "unsupported_media_type",
                                   f"{body.content_type} is not accepted; use one of {', '.join(MEDIA_TYPES)}")
    if body.size_bytes is not None and body.size_bytes > settings.media_max_bytes:
        raise ValidationFailed.one("size_bytes", "too_large",
                                   f"size_bytes is over this instance's limit of {settings.media_max_bytes} bytes")
    media = Media(workspace_id=principal.workspace_id, livemode=principal.livemode, filename=body.filename,
                  content_type=content_type, size_bytes=body.size_bytes, content_hash=body.content_hash)
    out = public(media, settings)
    media.expires_at = out.expires_at
    session.add(media)
    await session.commit()
    return MediaOut(data=out)


@router.get("", response_model=MediaList)
async def list_media(principal: PrincipalDep, session: SessionDep, settings: SettingsDep,
                     page: pagination.PageDep,
                     status: Annotated[Literal["pending", "uploaded", "deleted"] | None, Query()] = None) -> dict:
    query = scoped(Media, principal)
    if status is not None:
        query = query.where(Media.status == status)
    rows = (await session.exec(pagination.apply(query, Media, page))).all()
    return pagination.envelope(list(rows), page, lambda m: public(m, settings))


@router.get("/{media_id}", response_model=MediaOut)
async def get_media(media_id: str, principal: PrincipalDep, session: SessionDep,
                    settings: SettingsDep) -> MediaOut:
    return MediaOut(data=public(await get_owned(session, Media, media_id, principal, "Media"), settings))


@router.delete("/{media_id}", response_model=MediaOut)
async def delete_media(media_id: str, principal: PrincipalDep, session: SessionDep, state: StateDep) -> MediaOut:
    media = await get_owned(session, Media, media_id, principal, "Media")
    key = media.storage_key
    if media.status != "deleted":
        media.status = "deleted"
        media.storage_key = None
        session.add(media)
        await session.commit()
    if key:
        # The row no longer points at the bytes, so a failure here only leaves an orphan object behind.
        try:
            await storage_for(state.settings, state.http).delete(key)
        except StorageError as exc:
            log.warning("media %s: deleting stored bytes failed: %s", media.id, exc)
    return MediaOut(data=public(media, state.settings))


# --- presigned transfers -------------------------------------------------------------


def _refuse(problem: MediaProblem) -> ApiError:
    field = "sig" if problem.status == 403 else "body"
    issue = [{"field": field, "code": problem.code, "message": problem.message}]
    if problem.status == 403:
        return Forbidden(problem.message, issues=issue)
    if problem.status == 413:
        return PayloadTooLarge(problem.message, issues=issue)
    return ValidationFailed(problem.message, issues=issue)


def _authorised(purpose: str, media_id: str, expires: int, sig: str) -> None:
    try:
        check_signature(purpose, media_id, expires, sig)
    except MediaProblem as problem:
        raise _refuse(problem) from None


ExpiresQ = Annotated[int, Query(ge=0, le=2**53)]
SigQ = Annotated[str, Query(min_length=1, max_length=128)]


@transfer.put("/upload/{media_id}")
async def upload(media_id: str, expires: ExpiresQ, sig: SigQ, request: Request, state: StateDep) -> dict[str, Any]:
    _authorised("upload", media_id, expires, sig)
    settings = state.settings
    async with state.db.session() as s:
        media = await s.get(Media, media_id)
    if media is None or media.status == "deleted":
        raise NotFound("Media")
    if media.status != "pending":
        raise Conflict("This media has already been uploaded")
    limit = media.size_bytes or settings.media_max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _refuse(MediaProblem("too_large", f"The file is larger than {limit} bytes", 413))

    storage = storage_for(settings, state.http)
    try:
        spooled = await spool(request.stream(), storage.ensure_spool_dir(), limit=limit,
                              declared=media.content_type, exact_size=media.size_bytes)
    except MediaProblem as problem:
        raise _refuse(problem) from None
    key = new_storage_key(media)
    committed = kept = False
    try:
        if media.content_hash and spooled.sha256 != media.content_hash:
            raise _refuse(MediaProblem("content_hash_mismatch",
                                       f"The bytes hash to sha256:{spooled.sha256}, not the content_hash given"))
        await storage.commit(spooled.path, key, content_type=media.content_type, sha256=spooled.sha256,
                             size=spooled.size)
        committed = True
        async with state.db.session() as s:
            # Only a still-pending row takes the bytes: a concurrent upload or a delete that won keeps its state.
            claimed = await s.execute(update(Media).where(Media.id == media.id, Media.status == "pending").values(
                status="uploaded", storage_key=key, size_bytes=spooled.size, content_hash=spooled.sha256,
                uploaded_at=utcnow()))
            await s.commit()
            media = await s.get(Media, media.id, populate_existing=True)
        if claimed.rowcount != 1:
            raise Conflict("This media was uploaded or deleted meanwhile")
        kept = True
    except StorageError as exc:
        log.warning("media %s: storing the upload failed: %s", media.id, exc)
        raise ServiceUnavailable("Media storage is not available; retry the upload") from None
    finally:
        spooled.path.unlink(missing_ok=True)
        if committed and not kept:
            await _discard(storage, key)
    return {"data": public(media, settings).model_dump(mode="json")}


async def _discard(storage, key: str) -> None:
    try:
        await storage.delete(key)
    except StorageError as exc:
        log.warning("could not remove stored bytes %s: %s", key, exc)


async def _download(media_id: str, expires: int, sig: str, state, *, head: bool) -> Response:
    _authorised("download", media_id, expires, sig)
    async with state.db.session() as s:
        media = await s.get(Media, media_id)
    if media is None or media.status != "uploaded" or not media.storage_key:
        raise NotFound("Media")
    storage = storage_for(state.settings, state.http)
    try:
        stored = await storage.open(media.storage_key)
    except MissingObject:
        raise NotFound("Media") from None
    except StorageError as exc:
        log.warning("media %s: reading stored bytes failed: %s", media.id, exc)
        raise ServiceUnavailable("Media storage is not available; retry shortly") from None
    headers = {
        "Content-Length": str(stored.size),
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(media.filename, safe='')}",
        "Cache-Control": "private, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    if head:
        await stored.chunks.aclose()
        return Response(status_code=200, headers=headers, media_type=media.content_type)
    return StreamingResponse(stored.chunks, headers=headers, media_type=media.content_type)


@transfer.get("/download/{media_id}")
async def download(media_id: str, expires: ExpiresQ, sig: SigQ, state: StateDep) -> Response:
    return await _download(media_id, expires, sig, state, head=False)


@transfer.head("/download/{media_id}")
async def download_head(media_id: str, expires: ExpiresQ, sig: SigQ, state: StateDep) -> Response:
    return await _download(media_id, expires, sig, state, head=True)
