"""One typed settings object: `tocsin.toml` plus `TOCSIN_*` environment variables.

Secrets (API tokens, SMTP password, webhook URLs with keys in them) are read from the environment
only, through `Secrets`; nothing in `tocsin.toml` can hold one.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "tocsin.toml"


class ConfigError(Exception):
    """A configuration problem, already phrased as one line for the user."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrandConfig(_Section):
    name: str
    keywords: list[str] = Field(default_factory=list)
    handles: list[str] = Field(default_factory=list)
    excluded_terms: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=lambda: ["en"])


class SourceConfig(_Section):
    name: str
    kind: str  # spider name: appstore, rss, reddit, hackernews, discourse, mastodon, ...
    brand: str | None = None
    query: str = ""
    base_url: str = ""
    interval_minutes: int = Field(default=15, ge=1)
    # Overrides interval_minutes where a minute is too coarse (the demo, tests).
    interval_seconds: int | None = Field(default=None, ge=1)

    @property
    def every_seconds(self) -> int:
        return self.interval_seconds or self.interval_minutes * 60

    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)


class TeamMemberConfig(_Section):
    name: str
    email: str
    role: Literal["agent", "lead", "admin"] = "agent"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    skills: list[str] = Field(default_factory=list)
    max_open_cases: int = Field(default=10, ge=1)
    on_shift: bool = True
    requires_approval: bool = False


class BusinessHours(_Section):
    start: str = "08:00"
    end: str = "20:00"
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6])  # Monday = 0
    # Tiers whose clock only runs in business hours; critical and high run around the clock.
    tiers: list[str] = Field(default_factory=lambda: ["normal", "low"])


class SlaConfig(_Section):
    critical_minutes: int = 15
    high_minutes: int = 30
    normal_minutes: int = 60
    low_minutes: int = 24 * 60
    business_hours: BusinessHours = Field(default_factory=BusinessHours)

    def minutes_for(self, tier: str) -> int:
        return int(getattr(self, f"{tier}_minutes"))


class ReplyTemplateConfig(_Section):
    """A reply macro; variables: {first_name} {handle} {agent} {case_ref} {brand} {dm_link}."""

    name: str
    lang: str = "en"
    text: str
    topic: str | None = None  # shown first for cases of this topic


class PublishTarget(_Section):
    """Where replies are posted on one platform; the token comes from the variable `token_env`."""

    base_url: str = ""
    token_env: str | None = None


class TriageConfig(_Section):
    # A scored mention opens a case when its buzz risk or urgency reaches these.
    case_min_buzz_risk: float = 40.0
    case_min_urgency: Literal["low", "normal", "high", "critical"] = "normal"
    case_on_complaint: bool = True
    auto_assign: bool = True
    # Extra topic keywords (topic -> words), merged with the built-in ones; routing matches
    # topics to team members' skills.
    topics: dict[str, list[str]] = Field(default_factory=dict)
    templates: list[ReplyTemplateConfig] = Field(default_factory=list)
    # The brand's own account per platform (handle or numeric id), for DM links.
    accounts: dict[str, str] = Field(default_factory=dict)
    publish: dict[str, PublishTarget] = Field(default_factory=dict)


class AlertChannelConfig(_Section):
    name: str
    type: Literal["smtp", "slack", "mattermost", "teams", "webhook", "mailbox"]
    # Webhook URLs usually embed a key, so only the name of the variable holding it lives here.
    url_env: str | None = None
    url: str | None = None  # allowed for local receivers without a key (tests, demo)
    secret_env: str | None = None  # HMAC key for the generic webhook
    path: str | None = None  # mailbox file for type "mailbox" (a folder ending in "/" = Maildir)
    recipients: list[str] = Field(default_factory=list)  # email: used when a rule names none
    signature_header: str = "X-Tocsin-Signature"  # generic webhook, when secret_env is set
    timeout_seconds: float = Field(default=10.0, gt=0)


class AlertRuleConfig(_Section):
    name: str
    kind: Literal["buzz_risk", "urgency", "sla", "spike", "incident"]
    threshold: float | None = None
    channels: list[str] = Field(default_factory=list)
    recipients: list[str] = Field(default_factory=list)
    brand: str | None = None
    # threshold: buzz_risk = minimum risk (70), sla = minutes before the breach, spike = robust
    # z-score (4). min_count: spike = negative mentions the hour must hold (10), incident =
    # similar posts that open an incident (5).
    min_count: int | None = Field(default=None, ge=1)
    lookback_weeks: int = Field(default=8, ge=1, le=52)  # spike: weeks of history compared


class SmtpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str | None = None  # the password comes from TOCSIN_SMTP_PASSWORD
    sender: str = "tocsin@localhost"
    timeout_seconds: float = 10.0
    ssl: bool = False  # implicit TLS (port 465) instead of STARTTLS
    ca_file: str | None = None  # trust this CA bundle for TLS (a private relay)


class AlertsConfig(_Section):
    channels: list[AlertChannelConfig] = Field(default_factory=list)
    rules: list[AlertRuleConfig] = Field(default_factory=list)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    digest_after: int = 5  # more pending alerts than this on one channel: send one digest
    max_attempts: int = 8
    retry_base_seconds: int = Field(default=60, ge=1)  # backoff: base * 2^(attempt-1) ...
    retry_max_seconds: int = Field(default=3600, ge=1)  # ... capped here
    lease_seconds: int = Field(default=300, ge=30)  # a claimed alert is retried after this
    lookback_hours: int = Field(default=24, ge=1)  # rules only look at cases this recent

    @model_validator(mode="after")
    def _rules_name_known_channels(self) -> AlertsConfig:
        known = {c.name for c in self.channels}
        for rule in self.rules:
            unknown = [c for c in rule.channels if c not in known]
            if unknown:
                raise ValueError(f"rule {rule.name!r} names unknown channel(s) {unknown}")
        return self


class ReportsConfig(_Section):
    readers: list[str] = Field(default_factory=list)
    weekday: int = Field(default=0, ge=0, le=6)  # Monday = 0; in `timezone`
    time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    out_dir: Path | None = None  # default: <data_dir>/reports
    top_posts: int = Field(default=5, ge=1)
    themes: int = Field(default=5, ge=1)


class RetentionConfig(_Section):
    raw_days: int = Field(default=90, ge=1)
    author_days: int = Field(default=365, ge=1)
    purge_time: str = Field(default="03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class ServiceConfig(_Section):
    """`tocsin run`: how often the pipeline stages run and how jobs are shared between hosts."""

    pipeline_seconds: int = Field(default=60, ge=1)  # score, incidents, route, alerts, outbox
    lock_lease_seconds: int = Field(default=120, ge=5)  # renewed while a job runs
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    workers: int = Field(default=4, ge=1)
    # Mentions read per scoring call: sorted by length inside it (less padding), written in one
    # short transaction after the model has run (no lock is held meanwhile).
    score_batch: int = Field(default=512, ge=1)
    # Posts scored per pipeline round before routing and alerts run; a burst goes round again.
    score_per_run: int = Field(default=512, ge=1)


class BuzzConfig(_Section):
    """Buzz-risk context: who counts as a journalist or VIP, and the usual engagement pace."""

    journalist_handles: list[str] = Field(default_factory=list)
    vip_handles: list[str] = Field(default_factory=list)
    journalist_keywords: list[str] = Field(default_factory=list)  # added to the built-in bio words
    vip_keywords: list[str] = Field(default_factory=list)
    # Engagement per minute of a typical post, used until a brand has enough history of its own.
    usual_engagement_per_minute: float = Field(default=0.2, gt=0)


class ModelConfig(_Section):
    # "default" = the packaged MiniLM-L6 encoder plus the fine-tuned delta in classifier/weights.
    # Anything else is a Hugging Face model name or a folder.
    encoder: str = "default"
    weights: str | None = None  # a model folder written by `tocsin train`
    batch_size: int = 32  # posts per forward pass, after sorting by length (less padding)
    max_length: int = 128
    threads: int | None = None
    # int8: the encoder's linear layers run on 8-bit weights (per-channel), about 1.5x faster on
    # the CPU for a small accuracy cost (measured in classifier/MODEL_CARD.md); fp32: exact.
    precision: Literal["int8", "fp32"] = "int8"
    buzz: BuzzConfig = Field(default_factory=BuzzConfig)


class BoardConfig(_Section):
    base_url: str = "http://127.0.0.1:8501"
    port: int = 8501
    refresh_seconds: int = 15


class Settings(BaseSettings):
    """Everything Tocsin reads at start. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="TOCSIN_", env_nested_delimiter="__", extra="forbid", toml_file=None
    )

    database_url: str | None = None
    data_dir: Path = Path("tocsin-data")
    timezone: str = "UTC"
    brands: list[BrandConfig] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)
    team: list[TeamMemberConfig] = Field(default_factory=list)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    triage: TriageConfig = Field(default_factory=TriageConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    board: BoardConfig = Field(default_factory=BoardConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _config_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tocsin.db').resolve()}"

    def brand(self, name: str) -> BrandConfig | None:
        return next((b for b in self.brands if b.name == name), None)


class Secrets(BaseSettings):
    """Credentials, from the environment only (never from tocsin.toml, never logged)."""

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    smtp_password: SecretStr | None = None
    reddit_client_id: SecretStr | None = None
    reddit_client_secret: SecretStr | None = None
    x_bearer_token: SecretStr | None = None
    youtube_api_key: SecretStr | None = None
    mastodon_token: SecretStr | None = None
    bluesky_handle: str | None = None
    bluesky_app_password: SecretStr | None = None
    session_secret: SecretStr | None = None

    def env(self, name: str) -> str | None:
        """A named variable (webhook URLs, HMAC keys) as configured in tocsin.toml's `*_env`."""
        return os.environ.get(name)


def _config_path() -> Path:
    return Path(os.environ.get("TOCSIN_CONFIG", DEFAULT_CONFIG_FILE))


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "(top level)"
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        message = "unknown key"
    return f"{where}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning any problem into a one-line `ConfigError`."""
    path = _config_path()
    if path.is_file():
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    elif "TOCSIN_CONFIG" in os.environ:
        raise ConfigError(f"{path}: config file not found (set by TOCSIN_CONFIG)")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{path}: {_describe(dict(first))}{suffix}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def get_secrets() -> Secrets:
    return Secrets()
