"""`/v1/platforms/capabilities`: what each platform accepts, from the adapters' own declarations."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.registry import PLATFORMS, adapter_class
from api.deps import PrincipalDep
from api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/platforms", tags=["platforms"], responses=ERROR_RESPONSES)


@router.get("/capabilities")
async def capabilities(principal: PrincipalDep) -> dict:
    return {"data": {p: {"platform": p, "display_name": adapter_class(p).provider.display_name,
                         "auth": adapter_class(p).provider.auth_kind,
                         **adapter_class(p).capabilities.describe()} for p in PLATFORMS}}
