"""MaintenanceWorkflow on a real Temporal server, its schedule, and its replay test."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from activities.maintenance import PurgeInput
from store.models import IdempotencyRecord, OperatorLog, RateLimitWindow
from worker import ensure_schedules
from workflows.maintenance import SCHEDULE_ID, MaintenanceWorkflow

from tests.support.histories import record_history


async def _seed(stack) -> None:
    old = datetime.now(UTC) - timedelta(days=60)
    async with stack.db.session() as s:
        s.add(IdempotencyRecord(workspace_id=stack.tenant.workspace_id, livemode=False, key="old", route="/x",
                                request_hash="h", expires_at=old))
        s.add(IdempotencyRecord(workspace_id=stack.tenant.workspace_id, livemode=False, key="fresh", route="/x",
                                request_hash="h", expires_at=datetime.now(UTC) + timedelta(hours=1)))
        s.add(RateLimitWindow(api_key_id="key_x", window_start=1, count=3))
        s.add(OperatorLog(workspace_id=stack.tenant.workspace_id, livemode=False, kind="request", created_at=old))
        await s.commit()


async def test_purge_removes_only_expired_rows(stack, temporal_env):
    """The workflow runs its activity on the worker and deletes exactly the expired rows."""
    await _seed(stack)
    handle = await temporal_env.client.start_workflow(
        MaintenanceWorkflow.run, PurgeInput(), id=f"maintenance/test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.settings.task_queue)
    result = await handle.result()
    assert (result.idempotency_records, result.rate_limit_windows, result.operator_logs) == (1, 1, 1)
    assert result.dispatched_posts == 0
    async with stack.db.session() as s:
        keys = [r[0] for r in (await s.execute(text("SELECT key FROM idempotency_records"))).all()]
    assert keys == ["fresh"]
    record_history(await handle.fetch_history(), "maintenance.json")


async def test_schedule_is_created_once(stack, temporal_env):
    await ensure_schedules(temporal_env.client, stack.settings)
    await ensure_schedules(temporal_env.client, stack.settings)  # idempotent
    desc = await temporal_env.client.get_schedule_handle(SCHEDULE_ID).describe()
    assert desc.schedule.spec.intervals[0].every == timedelta(minutes=1)


async def test_orphaned_posts_are_dispatched(stack, temporal_env):
    """A post accepted while Temporal was unreachable (no workflow yet) is started by the sweeper and publishes."""
    from api.post_requests import TargetPlan
    from store.models import SocialAccount
    from store.posts import create_post, targets_json
    from tests.support.accounts import connect_oauth, sandbox_posts

    account_id = await connect_oauth(stack, "twitter", "orphan")
    async with stack.db.session() as s:
        account = await s.get(SocialAccount, account_id)
        post, _ = await s.run_sync(
            create_post, workspace_id=stack.tenant.workspace_id, livemode=False, status="publishing", mode="immediate",
            caption="left behind", title=None, scheduled_at=None,
            targets=targets_json([TargetPlan(account=account, parts=[{"caption": "left behind"}])]),
            request={}, idempotency_key=None)
        post.created_at = datetime.now(UTC) - timedelta(minutes=2)
        s.add(post)
        await s.commit()
    handle = await temporal_env.client.start_workflow(
        MaintenanceWorkflow.run, PurgeInput(), id=f"maintenance/test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.settings.task_queue)
    assert (await handle.result()).dispatched_posts == 1
    from workflows.publish import PublishPostWorkflow

    result = await temporal_env.client.get_workflow_handle_for(PublishPostWorkflow.run, f"post/{post.id}").result()
    assert result.status == "published"
    assert [p["text"] for p in await sandbox_posts(stack, "twitter")] == ["left behind"]


async def test_tokens_are_refreshed_ahead_of_expiry_and_dead_grants_flagged(stack, temporal_env):
    """An access token about to expire is refreshed (the rotated refresh token is stored); an account
    whose grant was revoked at the platform becomes reauth_required and an event is emitted."""
    from adapters.sandbox.core import WORLD
    from store.models import SocialAccount
    from tests.support.accounts import connect_oauth

    fresh = await connect_oauth(stack, "twitter", "soon_expiring")
    dead = await connect_oauth(stack, "tiktok", "revoked_user")
    soon = datetime.now(UTC) + timedelta(minutes=2)
    async with stack.db.session() as s:
        before = {}
        for account_id in (fresh, dead):
            account = await s.get(SocialAccount, account_id)
            account.token_expires_at = soon
            before[account_id] = (account.access_token, account.refresh_token)
            s.add(account)
        await s.commit()
        dead_external = (await s.get(SocialAccount, dead)).external_account_id
    WORLD.revoke_account_tokens("tiktok", dead_external)
    handle = await temporal_env.client.start_workflow(
        MaintenanceWorkflow.run, PurgeInput(), id=f"maintenance/test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.settings.task_queue)
    assert (await handle.result()).refreshed_accounts == 1
    async with stack.db.session() as s:
        a = await s.get(SocialAccount, fresh)
        b = await s.get(SocialAccount, dead)
        events = [r[0] for r in (await s.execute(text("SELECT type FROM webhook_events"))).all()]
    assert a.status == "active" and a.access_token != before[fresh][0] and a.refresh_token != before[fresh][1]
    assert a.token_expires_at > soon
    assert b.status == "reauth_required" and b.last_error
    assert events.count("account.reauth_required") == 1
