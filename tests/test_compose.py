"""docker-compose.yml: valid against the Compose Specification, with the production topology.

Docker cannot run on this machine, so the file is checked statically.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "compose-spec.schema.json").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_specification():
    jsonschema.validate(COMPOSE, SCHEMA)


def test_production_topology():
    """temporal (on PostgreSQL), temporal-ui, postgres, api and worker, wired to each other."""
    services = COMPOSE["services"]
    assert {"temporal", "temporal-ui", "postgres", "api", "worker"} <= set(services)
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["HERALD_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["HERALD_DATABASE_URL"]
        assert env["HERALD_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert services[name]["build"] == "."
    for svc in services.values():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"depends_on names a missing service {dep}"
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert (ROOT / "worker.py").exists()


def test_dockerfile_runs_what_compose_expects():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    assert '"api.app:create_app", "--factory"' in dockerfile
