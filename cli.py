"""`herald`: the operator's command line.

    herald workspace create NAME            prints the new workspace id
    herald key create --workspace ID --mode test|live [--name N]
                                            prints the new key alone on stdout
    herald key revoke KEY_ID
    herald db upgrade                       applies migrations to HERALD_DATABASE_URL
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from store.db import Database
from store.settings import get_settings


async def _workspace_create(name: str) -> str:
    from store.tenancy import create_workspace

    db = Database(get_settings().sqlalchemy_url)
    try:
        async with db.session() as s:
            ws = await create_workspace(s, name)
            await s.commit()
            return ws.id
    finally:
        await db.close()


async def _key_create(workspace_id: str, mode: str, name: str) -> str:
    from store.models import Workspace
    from store.tenancy import issue_key

    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    try:
        async with db.session() as s:
            if await s.get(Workspace, workspace_id) is None:
                raise SystemExit(f"error: no workspace {workspace_id}")
            _, plaintext = await issue_key(s, workspace_id, livemode=mode == "live",
                                           prefix=settings.api_key_prefix, name=name)
            await s.commit()
            return plaintext
    finally:
        await db.close()


async def _key_revoke(key_id: str) -> None:
    from store.models import ApiKey
    from store.tenancy import revoke_key

    db = Database(get_settings().sqlalchemy_url)
    try:
        async with db.session() as s:
            key = await s.get(ApiKey, key_id)
            if key is None:
                raise SystemExit(f"error: no API key {key_id}")
            await revoke_key(s, key)
            await s.commit()
    finally:
        await db.close()


def _db_upgrade() -> None:
    from store.migrate import upgrade

    upgrade(get_settings().sync_sqlalchemy_url)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="herald", description="Herald operator commands")
    sub = p.add_subparsers(dest="group", required=True)

    ws = sub.add_parser("workspace", help="workspaces").add_subparsers(dest="action", required=True)
    ws_create = ws.add_parser("create", help="create a workspace and print its id")
    ws_create.add_argument("name")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    key_create = key.add_parser("create", help="create a key and print it (shown once)")
    key_create.add_argument("--workspace", required=True)
    key_create.add_argument("--mode", choices=("test", "live"), required=True)
    key_create.add_argument("--name", default="")
    key_revoke = key.add_parser("revoke", help="revoke a key by id")
    key_revoke.add_argument("key_id")

    db = sub.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    match (args.group, args.action):
        case ("workspace", "create"):
            print(asyncio.run(_workspace_create(args.name)))
        case ("key", "create"):
            print(asyncio.run(_key_create(args.workspace, args.mode, args.name)))
        case ("key", "revoke"):
            asyncio.run(_key_revoke(args.key_id))
            print(f"revoked {args.key_id}", file=sys.stderr)
        case ("db", "upgrade"):
            _db_upgrade()
    return 0


if __name__ == "__main__":
    sys.exit(main())
