"""How every Herald process connects to Temporal (API, worker, CLI)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from store.settings import Settings

# The worker makes a payload converter for every workflow run it starts, and the SDK's converter keeps its
# TypeAdapters per instance: every run rebuilt the pydantic schema of each type it decoded (a few percent of
# the worker's CPU). One process-wide cache serves them all; a TypeAdapter holds nothing but its schema.
_TYPE_ADAPTERS = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _SharedCacheJSON(PydanticJSONPlainPayloadConverter):
    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)
        self._type_adapter = _TYPE_ADAPTERS

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._type_adapter = _TYPE_ADAPTERS


# The SDK's default converters with pydantic JSON in place of plain JSON. None keeps per-call state, so one set
# serves every PayloadConverter: the worker makes a new one on every workflow activation.
_CONVERTERS = tuple(_SharedCacheJSON() if isinstance(c, JSONPlainPayloadConverter) else c
                    for c in DefaultPayloadConverter.default_encoding_payload_converters)


class PayloadConverter(PydanticPayloadConverter):
    """The SDK's pydantic payload converter, with the process-wide TypeAdapter cache."""

    def __init__(self) -> None:
        CompositePayloadConverter.__init__(self, *_CONVERTERS)


DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)


async def connect(settings: Settings) -> Client:
    from observability import temporal as observed

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        interceptors=observed.client_interceptors(settings),
        runtime=observed.runtime(settings),
    )


async def connect_with_retry(settings: Settings, *, attempts: int = 60, log=None) -> Client:
    """Processes may start before the server: retry with backoff for about a minute."""
    import asyncio

    delay = 0.25
    for attempt in range(1, attempts + 1):
        try:
            return await connect(settings)
        except Exception as exc:
            if attempt == attempts:
                raise
            if log:
                log.warning("temporal not reachable (%s), retrying in %.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register Herald's custom search attributes (already present on a dev server started by Herald)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from workflows.search_attributes import DEV_SERVER_FLAGS

    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {name: kind for name, kind in DEV_SERVER_FLAGS.items() if name not in existing.custom_attributes}
    if not missing:
        return
    types = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
             "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
             "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL}
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=namespace, search_attributes={name: types[kind] for name, kind in missing.items()}))


def workflow_id(post_id: str) -> str:
    return f"post/{post_id}"


def names_media(request) -> bool:
    """Whether a post's request names media anywhere: top level, per platform or per thread part."""
    if isinstance(request, dict):
        return any((key in ("media_urls", "media_ids") and value) or names_media(value)
                   for key, value in request.items())
    if isinstance(request, list):
        return any(names_media(value) for value in request)
    return False


def start_delay(scheduled_at: datetime | None, prep_lead: float | None, now: datetime | None = None) -> timedelta | None:
    """How long the server holds a scheduled post's run before its first workflow task: until the post is due,
    or its preparation is. A run waiting on its own timer would cost a workflow task and a timer when accepted
    and a place in every worker's cache while it waits; a held run costs neither, and an edit or cancel (an
    update) starts it at once, after which it waits on its timer as before."""
    if scheduled_at is None:
        return None
    wait = scheduled_at - (now or datetime.now(UTC)) - timedelta(seconds=prep_lead or 0)
    return wait if wait > timedelta(0) else None


async def start_post_workflow(client: Client, settings: Settings, post, platforms: list[str],
                              retry_result_ids: list[str] | None = None) -> bool:
    """Start `post/<id>`; False when a run is already in progress (starting is idempotent)."""
    from temporalio.common import (
        SearchAttributePair,
        TypedSearchAttributes,
        WorkflowIDConflictPolicy,
        WorkflowIDReusePolicy,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows import search_attributes as sa
    from workflows.policies import PlatformRetry
    from workflows.publish import PublishPostWorkflow
    from workflows.publish_payloads import REVISION, PublishPostInput

    scheduled_at = post.scheduled_at if not retry_result_ids else None
    prep_lead = (settings.prep_lead_seconds or None) if names_media(post.request) else None
    try:
        await client.start_workflow(
            PublishPostWorkflow.run,
            PublishPostInput(post_id=post.id, scheduled_at=scheduled_at, retry_result_ids=retry_result_ids or [],
                             platform_retry=PlatformRetry(settings.platform_retry_first_seconds,
                                                          settings.platform_retry_longest_seconds,
                                                          settings.platform_retry_attempts),
                             # Text alone has nothing to prepare: such a post skips the step altogether.
                             prep_lead_seconds=prep_lead,
                             revision=REVISION),
            start_delay=start_delay(scheduled_at, prep_lead),
            id=workflow_id(post.id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa.WORKSPACE, post.workspace_id), SearchAttributePair(sa.LIVEMODE, post.livemode),
                SearchAttributePair(sa.PLATFORMS, platforms),
                # A run with nothing to wait for is publishing from its start (REVISION), and does not say so again.
                SearchAttributePair(sa.STATUS, post.status if scheduled_at is not None else "publishing")]),
            static_summary=f"Post {post.id} to {', '.join(platforms)}",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True
