"""Typed settings, read from `LEADFLOW_*` environment variables and an optional `.env`."""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger("leadflow.config")


class Settings(BaseSettings):
    """All configuration of a Leadflow process."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    allow_signup: bool = True
    jwt_issuer: str = "leadflow"
    jwt_audience: str = "leadflow-api"
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    supabase_jwt_secret: str = ""
    login_attempts_per_minute: int = 10
    cors_origins: list[str] = Field(default_factory=list)
    default_phone_region: str = "DE"
    list_count_cap: int = 10_000
    bulk_max_leads: int = 10_000
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "Leadflow <noreply@localhost>"
    smtp_starttls: bool = False
    smtp_tls: bool = False
    # Seconds to wait for each step of an SMTP conversation (connect, each reply).
    smtp_timeout_seconds: float = Field(default=10, gt=0, le=300)
    public_url: str = "http://127.0.0.1:8000"
    worker_threads: int = 2
    embedded_worker: bool = True
    outbox_relay_seconds: int = 10
    outbox_lock_seconds: int = 300
    outbox_max_attempts: int = 3
    outbox_backoff_seconds: int = 30
    sla_check_seconds: int = 300
    task_due_seconds: int = 60
    default_sla_duration_minutes: int = 120
    default_sla_reminder_minutes: int = 30
    ai_provider: Literal["local", "openai"] = "local"
    # The OpenAI SDK's own variable names work too (the seed documents OPENAI_API_KEY etc.).
    openai_api_key: str = Field(
        default="", validation_alias=AliasChoices("LEADFLOW_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_model: str = Field(
        default="gpt-4o-mini",
        validation_alias=AliasChoices("LEADFLOW_OPENAI_MODEL", "OPENAI_MODEL"),
    )
    openai_base_url: str = Field(
        default="", validation_alias=AliasChoices("LEADFLOW_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    ai_timeout_seconds: float = 20
    ai_max_retries: int = 2
    ai_rate_limit_per_minute: int = 60
    # AI + calls limits: provider calls at once per process (wait up to the queue timeout for
    # a slot, then 429 ai_busy); remote provider calls per organisation and UTC day (0 =
    # unlimited); call requests per user and hour, per organisation and hour, per organisation
    # and UTC day (0 = unlimited).
    ai_max_concurrency: int = Field(default=8, ge=1)
    ai_queue_timeout_seconds: float = Field(default=5.0, ge=0)
    ai_daily_limit: int = Field(default=500, ge=0)
    calls_per_user_per_hour: int = Field(default=30, ge=0)
    calls_per_org_per_hour: int = Field(default=200, ge=0)
    calls_per_org_per_day: int = Field(default=1000, ge=0)
    voice_provider: Literal["simulated", "twilio"] = "simulated"
    # Twilio's own variable names work too, like the OpenAI ones above.
    twilio_account_sid: str = Field(
        default="",
        validation_alias=AliasChoices("LEADFLOW_TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"),
    )
    twilio_auth_token: str = Field(
        default="", validation_alias=AliasChoices("LEADFLOW_TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN")
    )
    twilio_from_number: str = Field(
        default="",
        validation_alias=AliasChoices("LEADFLOW_TWILIO_FROM_NUMBER", "TWILIO_FROM_NUMBER"),
    )
    twilio_api_base: str = "https://api.twilio.com"
    call_max_attempts: int = Field(default=3, ge=1)
    call_retry_minutes: int = Field(default=30, ge=1)
    call_due_seconds: int = 60
    import_sync_max_rows: int = 5_000
    import_max_bytes: int = 100 * 1024 * 1024
    import_resume_seconds: int = 60
    # Imports: bounded input and output (XLSX zip/cell limits, stored row errors, file retention).
    import_xlsx_max_uncompressed_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    import_xlsx_max_cells: int = Field(default=20_000_000, ge=1)
    import_max_stored_errors: int = Field(default=10_000, ge=0)
    import_file_retention_hours: float = Field(default=24, ge=0)
    import_file_cleanup_seconds: int = Field(default=3600, ge=1)
    # -- imports: scope and claim fencing (wt-imports1) --
    # A background import not checkpointed for this long may be claimed by another worker;
    # the earlier worker is then fenced off (its next checkpoint fails and rolls back).
    import_lease_seconds: int = Field(default=120, ge=1)
    # Background imports of files at least this large prepare their rows in a process of
    # their own (another core); smaller ones in a thread.
    import_prepare_process_min_bytes: int = Field(default=8_000_000, ge=0)
    log_level: str = "INFO"
    db_echo: bool = False
    db_pool_size: int = 10
    db_pre_ping: bool = False
    # --- operations: body limits, proxies, metrics, retention (area: ops) ---
    # Largest request body on every route but the lead import (`import_max_bytes`).
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    # Peers whose X-Forwarded-For is believed: IPs or CIDRs, comma-separated or a JSON list.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Bearer token `/metrics` requires; empty leaves it open (e.g. behind a private network).
    metrics_token: str = ""
    prune_seconds: int = Field(default=86_400, ge=60)
    prune_batch_size: int = Field(default=1_000, ge=1)
    retention_sessions_days: int = Field(default=30, ge=1)
    retention_outbox_days: int = Field(default=30, ge=1)
    retention_call_events_days: int = Field(default=365, ge=1)
    # Event streams (notifications, call-request events): how often an open stream re-checks
    # its session/credential (and closes once it has ended), and how many one user may hold
    # open in one process.
    stream_recheck_seconds: float = Field(default=30, gt=0, le=30)
    streams_per_user: int = Field(default=5, ge=1)
    # Reports: rows in a build's preview; the most rows a run may export (the PDF table shows
    # at most `report_pdf_max_rows`); how long a download link works and a file is kept; the
    # largest file a scheduled email attaches (larger ones are linked only); how often the
    # worker looks for due schedules and for expired files.
    report_preview_rows: int = Field(default=50, ge=1, le=500)
    report_max_rows: int = Field(default=200_000, ge=1)
    report_pdf_max_rows: int = Field(default=1_000, ge=1)
    report_link_hours: float = Field(default=24, gt=0)
    report_file_retention_hours: float = Field(default=168, gt=0)
    report_attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    report_schedule_seconds: int = Field(default=60, ge=1)
    # A scheduled run still `running` this long after it was claimed lost its worker: the
    # schedule check runs it again, once (a second interruption fails it).
    report_run_lease_seconds: int = Field(default=3600, ge=1)
    # How often lead-rollup deltas are folded (PostgreSQL; readers sum the rest meanwhile).
    rollup_fold_seconds: int = Field(default=60, ge=1)
    report_file_cleanup_seconds: int = Field(default=3600, ge=1)
    # Each schedule mails lead data on its own; a cap keeps one user from flooding the outbox.
    report_max_schedules_per_user: int = Field(default=20, ge=1)
    # Auth: sign-up throttling and the Supabase bridge.
    register_per_hour: int = Field(default=5, ge=1)
    supabase_issuer: str = ""
    # System health: how often the worker samples its figures (one sample a minute), how
    # often each worker renews its heartbeat (it counts as alive for three intervals), how
    # long samples and request figures are kept, and the organisation whose admins see the
    # installation's health (empty: the oldest organisation, the one created at installation).
    health_sample_seconds: int = Field(default=60, ge=60, le=3600)
    heartbeat_seconds: int = Field(default=15, ge=1, le=300)
    retention_health_days: int = Field(default=30, ge=1, le=366)
    operator_organization_id: uuid.UUID | None = None

    @field_validator("operator_organization_id", mode="before")
    @classmethod
    def _empty_operator(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    # -- web app (wt-web) --
    # How long a browser sign-in lasts without use; each page renews it (up to the login
    # session's own end).
    web_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # -- integrations and webhooks (wt-webhooks) --
    # Earlier values of LEADFLOW_SECRET_KEY (comma-separated or a JSON list): stored
    # credentials encrypted under them stay readable until `leadflow integrations rotate-key`
    # has re-encrypted them under the current key.
    previous_secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # An organisation's own SMTP relay, OpenAI base URL or Twilio API base may not point at a
    # private, loopback or link-local address unless this is set (a single-tenant install
    # with an internal relay).
    integrations_allow_private: bool = False
    integrations_timeout_seconds: float = Field(default=10, gt=0, le=120)
    # Webhooks: targets on private, loopback or link-local addresses are refused unless set;
    # the HTTP timeout of one attempt; attempts with exponential backoff (base, cap) — the
    # defaults spread 13 attempts over about 26 hours; an endpoint whose attempts all failed
    # for `disable_after_hours` (and at least `disable_min_failures` in a row) is disabled.
    webhooks_allow_private: bool = False
    webhooks_timeout_seconds: float = Field(default=10, gt=0, le=120)
    webhooks_max_attempts: int = Field(default=13, ge=1, le=50)
    webhooks_backoff_seconds: int = Field(default=60, ge=0)
    webhooks_backoff_max_seconds: int = Field(default=6 * 3600, ge=0)
    webhooks_disable_after_hours: float = Field(default=24, gt=0)
    webhooks_disable_min_failures: int = Field(default=5, ge=1)
    webhooks_relay_seconds: int = Field(default=10, ge=1)
    webhooks_lock_seconds: int = Field(default=120, ge=10)
    webhooks_batch_size: int = Field(default=50, ge=1, le=500)
    webhooks_concurrency: int = Field(default=8, ge=1, le=64)
    webhooks_max_endpoints: int = Field(default=20, ge=1)
    retention_webhooks_days: int = Field(default=30, ge=1)

    @field_validator("trusted_proxies", "previous_secret_keys", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {entry!r}") from None
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'leadflow.db'}"
        return self

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file."""
        return self.database_url.startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The signing key; generated once into the data directory outside production."""
        if self.secret_key:
            return self.secret_key
        if self.env == "production":
            raise RuntimeError("LEADFLOW_SECRET_KEY must be set when LEADFLOW_ENV=production")
        path = self.data_dir / "secret_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            path.write_text(key)
            path.chmod(0o600)
            log.warning("LEADFLOW_SECRET_KEY is not set; generated one into %s", path)
        # Remembered: every request signs or verifies with it.
        self.secret_key = key
        return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache)."""
    return Settings()
