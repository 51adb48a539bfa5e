"""The one settings object. Environment variables carry the `HERALD_` prefix.

Development (`HERALD_ENV=development`, the default) may fall back to files
that `make run` creates under the data directory. Any other environment must
be given every secret explicitly: there are no usable defaults.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_FILE = "secret-key"
DEV_OPERATOR_PASSWORD_FILE = "operator-password"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")

    database_url: str = ""  # empty: SQLite file in data_dir
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "herald"
    # Optional per-platform task queues ("platform=queue,..."), so one slow platform never starves the others.
    # `bluesky=herald-bluesky,youtube=herald-slow` or JSON; parsed by _parse_queue_pairs, not as JSON only.
    platform_task_queues: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # The task queues this worker process polls: empty = all of them (the main queue, with the workflows and
    # every activity, and each platform queue above, with the activities only). Name some to run a dedicated
    # worker for a slow platform, e.g. HERALD_WORKER_QUEUES=herald-youtube.
    worker_queues: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Workflow runs a worker keeps in memory (the SDK's default). A run not in it is rebuilt from its history on
    # its next task, which costs CPU: more waiting posts than this pay it when they fall due. Each costs memory.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    temporal_ui_url: str = "http://localhost:8233"
    # The worker keeps Herald's Temporal Schedules (maintenance, dispatch sweeper) in place.
    schedules_enabled: bool = True

    public_base_url: str = "http://localhost:8000"
    # Where test-mode adapters find the sandbox platforms; empty = `<public_base_url>/sandbox`.
    sandbox_base_url: str = ""
    sandbox_enabled: bool = True

    # Base64 32-byte keys, comma separated: the first encrypts, all decrypt (rotation).
    encryption_keys: SecretStr | None = None
    api_key_prefix: str = "hrld"

    rate_limit_per_minute: int = Field(default=100, ge=1)
    schedule_lead_seconds: int = Field(default=60, ge=0)
    immediate_publish_wait_seconds: float = Field(default=25.0, ge=0)
    # How a platform call is retried after a transient error or a 429 without Retry-After: exponential backoff
    # (x2) from the first interval up to the longest, for at most this many attempts. Fixed per post when its
    # workflow starts.
    platform_retry_first_seconds: float = Field(default=1.0, gt=0)
    platform_retry_longest_seconds: float = Field(default=300.0, gt=0)
    platform_retry_attempts: int = Field(default=12, ge=1)
    # A scheduled post with media uploads it and stages its platform containers this long before it is due, so that
    # at the due time only the publish call is left. 0 turns it off. Containers live 24 h on Instagram and
    # Threads, so keep it well below that.
    prep_lead_seconds: float = Field(default=300.0, ge=0, le=6 * 3600)
    connect_session_ttl_minutes: float = Field(default=30, gt=0)
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # An in-flight idempotency record older than this is taken as abandoned (its process died).
    idempotency_lease_seconds: int = Field(default=120, ge=5)

    operator_username: str = "admin"
    operator_password: SecretStr | None = None

    # Instance-wide "quickstart" OAuth apps: {"twitter": {"client_id": "...", "client_secret": "..."}}.
    quickstart_credentials: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Per-platform URL overrides: {"bluesky": {"api_base": "https://pds.example"}}.
    provider_overrides: dict[str, dict[str, str]] = Field(default_factory=dict)

    log_level: str = "INFO"
    # One JSON object per line (request, workspace, post and workflow ids attached); unset: json in production,
    # text elsewhere.
    log_format: Literal["json", "text"] | None = None

    # Observability (README "Observability"). Every process serves its own registry: the API at /metrics, the
    # worker on `worker_metrics_port`, and the Temporal SDK's own metrics on `temporal_metrics_port` of the
    # process that connects (set it on the worker; unset ports are off).
    metrics_enabled: bool = True
    metrics_host: str = "0.0.0.0"
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    temporal_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # OpenTelemetry traces from the API request through the workflow to the platform call. Off costs nothing.
    tracing: Literal["off", "console", "otlp"] = "off"
    otlp_endpoint: str = "http://localhost:4318"  # OTLP over HTTP; "/v1/traces" is added when no path is given

    # Media library: bytes live in a local directory (default `<data_dir>/media`) or an S3-compatible bucket.
    media_storage: Literal["local", "s3"] = "local"
    media_s3_endpoint: str = ""  # e.g. https://s3.eu-central-1.amazonaws.com or a MinIO URL (path-style)
    media_s3_bucket: str = ""
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str = ""
    media_s3_secret_key: SecretStr | None = None
    media_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    # Lifetime of presigned upload and download URLs.
    media_url_ttl_seconds: int = Field(default=3600, ge=1)

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _parse_queue_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip().startswith("[") else [q.strip() for q in value.split(",")
                                                                             if q.strip()]
        return value

    @field_validator("platform_task_queues", mode="before")
    @classmethod
    def _parse_queue_pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip().startswith("{") else dict(
                pair.strip().split("=", 1) for pair in value.split(",") if "=" in pair)
        return value

    @model_validator(mode="after")
    def _secrets_outside_development(self) -> Settings:
        if self.env != "development":
            missing = [
                name
                for name, value in (("HERALD_ENCRYPTION_KEYS", self.encryption_keys),)
                if value is None or not value.get_secret_value()
            ]
            if self.env == "production" and self.operator_password is None:
                missing.append("HERALD_OPERATOR_PASSWORD")
            if missing:
                raise ValueError(f"{', '.join(missing)} must be set when HERALD_ENV={self.env}")
        return self

    @model_validator(mode="after")
    def _media_bucket_complete(self) -> Settings:
        if self.media_storage == "s3":
            missing = [f"HERALD_{name.upper()}" for name in ("media_s3_endpoint", "media_s3_bucket",
                                                               "media_s3_access_key", "media_s3_secret_key")
                       if not getattr(self, name)]
            if missing:
                raise ValueError(f"{', '.join(missing)} must be set when HERALD_MEDIA_STORAGE=s3")
        return self

    # --- derived values ---

    @property
    def sqlalchemy_url(self) -> str:
        """The async driver URL for the configured database."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'herald.db').resolve()}"
        if url.startswith("sqlite:"):
            return url.replace("sqlite:", "sqlite+aiosqlite:", 1)
        if url.startswith(("postgres://", "postgresql://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def sync_sqlalchemy_url(self) -> str:
        """The same database through a synchronous driver (migrations, CLI)."""
        return self.sqlalchemy_url.replace("+aiosqlite", "")

    @property
    def sandbox_url(self) -> str:
        return self.sandbox_base_url or f"{self.public_base_url.rstrip('/')}/sandbox"

    def encryption_key_list(self) -> list[str]:
        if self.encryption_keys is not None and self.encryption_keys.get_secret_value():
            return [k.strip() for k in self.encryption_keys.get_secret_value().split(",") if k.strip()]
        # Development only: `make run` writes this file once and keeps it.
        path = self.data_dir / DEV_SECRET_FILE
        if path.exists():
            return [path.read_text().strip()]
        raise RuntimeError("No encryption key: set HERALD_ENCRYPTION_KEYS or run `make run` once")

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.env == "production" else "text")

    def queue_for(self, platform: str) -> str:
        return self.platform_task_queues.get(platform, self.task_queue)

    def polled_queues(self) -> list[str]:
        every = [self.task_queue, *sorted(set(self.platform_task_queues.values()) - {self.task_queue})]
        return [q for q in every if q in self.worker_queues] if self.worker_queues else every

    def operator_password_value(self) -> str | None:
        """The dashboard password: HERALD_OPERATOR_PASSWORD, or in development a generated file kept in
        the data directory (read it there to log in). None outside development when unset: no login."""
        if self.operator_password is not None and self.operator_password.get_secret_value():
            return self.operator_password.get_secret_value()
        if self.env != "development":
            return None
        path = self.data_dir / DEV_OPERATOR_PASSWORD_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(18) + "\n")
            path.chmod(0o600)
        return path.read_text().strip() or None


@lru_cache
def get_settings() -> Settings:
    return Settings()
