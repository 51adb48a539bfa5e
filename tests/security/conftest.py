"""One stack per test module, on SQLite and (where it is reachable) PostgreSQL.

The security tests build a large world once (workspaces, accounts, posts, webhooks...) and run many checks
against it, so the database and the stack are module-scoped here. Everything else is the suite's own
harness: `tests.conftest.start_stack` (uvicorn + an in-process worker on the session's Temporal dev server)
and the same PostgreSQL rules as the `database` fixture (a fresh schema; skipped when PostgreSQL is not
reachable, required in CI).
"""

from __future__ import annotations

import pytest

from tests.conftest import migrated_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database(request, tmp_path_factory):
    """A migrated database shared by the tests of one module (the `database` fixture, module-scoped)."""
    with migrated_database(request.param, tmp_path_factory.mktemp("security")) as db:
        yield db
