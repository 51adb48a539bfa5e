"""`herald`: the operator's command line.

    herald workspace create NAME            prints the new workspace id
    herald key create --workspace ID --mode test|live [--name N]
                                            prints the new key alone on stdout
    herald key revoke KEY_ID
    herald db upgrade                       applies migrations to HERALD_DATABASE_URL
    herald post replay POST_ID              replays the post's workflow history against this code
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


async def _post_replay(post_id: str) -> int:
    """Fetch every run of `post/<id>` from Temporal and replay it with the current workflow code."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
    from temporalio.worker import Replayer

    from temporal_client import connect
    from worker import WORKFLOWS
    from workflows.sandbox import workflow_runner

    settings = get_settings()
    client = await connect(settings)
    # The SDK core logs each non-determinism it meets on stdout; the report below says it once, per run.
    quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter,
                        workflow_runner=workflow_runner(client.data_converter), runtime=quiet)
    runs = [wf async for wf in client.list_workflows(f'WorkflowId = "post/{post_id}"')]
    if not runs:
        print(f"no workflow found for post {post_id}", file=sys.stderr)
        return 1
    failures = 0
    for run in runs:
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        if not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED for e in history.events):
            # A scheduled post's run is held until due (a start delay): no workflow code has run to check.
            print(f"held  {run.id} run {run.run_id} (not started yet: nothing to replay)")
            continue
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is None:
            print(f"ok    {run.id} run {run.run_id} ({len(history.events)} events)")
        else:
            failures += 1
            print(f"FAIL  {run.id} run {run.run_id}: {result.replay_failure}")
    return 1 if failures else 0


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

    post = sub.add_parser("post", help="posts").add_subparsers(dest="action", required=True)
    replay = post.add_parser("replay", help="replay a post's workflow history and report non-determinism")
    replay.add_argument("post_id")
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
        case ("post", "replay"):
            return asyncio.run(_post_replay(args.post_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
