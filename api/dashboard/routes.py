"""The operator dashboard's one router: login, apps and profiles, keys, redirects, credentials, accounts,
posts and logs, each page family in its own module."""

from __future__ import annotations

from fastapi import APIRouter

from api.dashboard import accounts, apps, credentials, keys, login, logs, posts, redirects

router = APIRouter()
for module in (login, apps, keys, redirects, credentials, accounts, posts, logs):
    router.include_router(module.router)
