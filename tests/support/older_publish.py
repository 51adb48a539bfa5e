"""A workflow registered under PublishPostWorkflow's name that does something else: what an older Herald might
have run, for checking that `herald post replay` reports a history today's code cannot reproduce."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.publish_payloads import PublishPostInput


@workflow.defn(name="PublishPostWorkflow")
class OlderPublishPost:
    @workflow.run
    async def run(self, inp: PublishPostInput) -> None:
        await workflow.sleep(timedelta(milliseconds=10))
