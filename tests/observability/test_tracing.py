"""OpenTelemetry: one trace from the API request to the platform's HTTP call, across Temporal."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from observability import tracing
from tests.conftest import start_stack
from tests.support.accounts import connect_oauth


@pytest.fixture
def spans():
    """Every span this process ends from now on. The provider is the one HERALD_TRACING sets up (there is one
    per process), so the stack's own exporter runs too: this one only listens."""
    memory = InMemorySpanExporter()
    tracing.provider().add_span_processor(SimpleSpanProcessor(memory))
    try:
        yield memory
    finally:
        tracing.provider().force_flush()  # the console exporter's batch, into this test's captured output
        memory.shutdown()  # later tests' spans are not kept


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_one_trace_links_the_request_the_workflow_the_activity_and_the_platform_call(database, temporal_env,
                                                                                           spans):
    """The API's request span is the root; StartWorkflow is its child; the workflow and activity spans follow
    through Temporal's headers; the activity's httpx call to the sandbox X is a client span of the activity,
    and the sandbox (served by the same API) continues the trace from its `traceparent` header."""
    stack, close = await start_stack(database, temporal_env, tracing="console", immediate_publish_wait_seconds=30)
    try:
        x = await connect_oauth(stack, "twitter", "tracy")
        async with stack.client(stack.tenant.test_key) as c:
            r = await c.post("/v1/social-posts", json={"caption": "traced", "account_ids": [x]})
            post = r.json()["data"]
            assert post["status"] == "published", post
    finally:
        await close()

    ended = spans.get_finished_spans()

    def only(what: str, found: list):
        assert len(found) == 1, (what, sorted(s.name for s in ended))
        return found[0]

    request = only("the request span", [s for s in ended if s.name == "POST /v1/social-posts"])
    assert request.kind == SpanKind.SERVER and request.attributes["http.route"] == "/v1/social-posts"
    trace_id = request.context.trace_id
    in_trace = [s for s in ended if s.context.trace_id == trace_id]
    by_name = {s.name: s for s in in_trace}

    def one(name: str):
        assert name in by_name, sorted(by_name)
        return by_name[name]

    start = one("StartWorkflow:PublishPostWorkflow")
    assert start.parent.span_id == request.context.span_id
    assert start.attributes["temporalWorkflowID"] == f"post/{post['id']}"
    one("RunWorkflow:PublishPostWorkflow")
    run_activity = one("RunActivity:publish.publish_part")
    assert one("StartActivity:publish.publish_part").context.span_id == run_activity.parent.span_id
    platform_call = only("the call to X", [s for s in in_trace if s.kind == SpanKind.CLIENT
                                           and "/sandbox/twitter/2/tweets" in s.attributes.get("url.full", "")])
    assert platform_call.parent.span_id == run_activity.context.span_id
    assert platform_call.attributes["http.response.status_code"] == 201
    sandbox = only("the sandbox X's span", [s for s in in_trace if s.name == "POST /sandbox/twitter/2/tweets"])
    assert sandbox.kind == SpanKind.SERVER
    assert sandbox.parent.span_id == platform_call.context.span_id
