"""What PublishPostWorkflow takes and answers: its input, its updates, its query, its prepared work.

A module of its own so that the workflow can import it passed through the sandbox (see workflows/publish.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from adapters.base import MediaRef, Prepared
from workflows.policies import PlatformRetry


# What a run started now is told about the code path it takes (`PublishPostInput.revision`):
# 1: the lean fan-out and preparing ahead without their patch markers, and, for a post not waiting for a due
#    time, the "publishing" status set by the starter rather than upserted by the run. Each patch marker also
#    upserted TemporalChangeVersion, and every upsert is a visibility write on the server: an immediate post's
#    history goes from 26 events to 23 and from five visibility writes to three.
REVISION = 1


@dataclass
class PublishPostInput:
    post_id: str
    scheduled_at: datetime | None = None
    # An engineer's retry names the results to run again; otherwise every target is read at publish time.
    retry_result_ids: list[str] = field(default_factory=list)
    # None (workflows started before it existed): PLATFORM_RETRY.
    platform_retry: PlatformRetry | None = None
    # None: nothing is prepared ahead (settings `prep_lead_seconds` = 0, or started before it existed).
    prep_lead_seconds: float | None = None
    # REVISION when started; 0 (started before it existed): patch markers decide, as they did then.
    revision: int = 0


@dataclass
class Prepped:
    """One target's work done ahead: each part's media, and the first part's staged container."""
    media: dict[int, list[MediaRef]] = field(default_factory=dict)
    prepared: Prepared | None = None


@dataclass
class EditRequest:
    changes: dict
    scheduled_at: datetime | None = None


@dataclass
class CancelRequest:
    reason: str = "cancelled by request"


@dataclass
class WorkflowState:
    phase: str
    scheduled_at: datetime | None
    results: dict[str, str] = field(default_factory=dict)
