"""The one settings tree of FactoryOps.

Every field is read from the environment with the ``FACTORYOPS_`` prefix (nested groups use
``__``, e.g. ``FACTORYOPS_DATABASE__URL``) or from a ``.env`` file in the working directory.
``factoryops config`` prints the effective values with secrets masked.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "change-me-factoryops-development-secret"


class Environment(StrEnum):
    development = "development"
    production = "production"


class HttpSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the API and web UI listen on.")
    port: int = Field(8000, description="Port of the API and the web UI.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed by CORS; empty means closed."
    )
    rate_limit_per_minute: int = Field(
        1200,
        ge=0,
        description="API requests allowed per minute and client (the signed-in user, else the client address) "
        "before HTTP 429; bursts up to the same number; 0: no limit.",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (chain) of the API and web portal; with `tls_key_file` they are served "
        "over HTTPS (empty: plain HTTP, e.g. behind a TLS-terminating proxy). See docs/tls.md.",
    )
    tls_key_file: Path | None = Field(None, description="Unencrypted PEM private key of `tls_cert_file`.")
    tls_proxy: bool = Field(
        False,
        description="TLS is terminated in front of the API (a reverse proxy or load balancer): production then "
        "does not warn about plain HTTP. See docs/tls.md.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token that `GET /metrics` on the API's port asks of scrapers (`Authorization: Bearer "
        "<token>`). Empty: /metrics there is open in development and answers 404 in production. "
        "See docs/observability.md.",
    )

    @model_validator(mode="after")
    def _tls_files_in_pairs(self) -> HttpSettings:
        _both_or_neither(self.tls_cert_file, self.tls_key_file, "FACTORYOPS_HTTP__TLS")
        return self


def _both_or_neither(cert: Path | None, key: Path | None, prefix: str) -> None:
    if (cert is None) != (key is None):
        given, missing = ("CERT", "KEY") if key is None else ("KEY", "CERT")
        raise ValueError(f"{prefix}_{given}_FILE is set without {prefix}_{missing}_FILE: set both or neither")


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the metadata database. Empty: a SQLite file in the data folder. "
            "Production: mysql+pymysql://user:password@host:3306/factoryops"
        ),
    )
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(10, description="Connections kept open per process (MySQL only).")


class AuthSettings(BaseModel):
    jwt_secret: SecretStr = Field(
        SecretStr(DEFAULT_JWT_SECRET),
        description="Secret that signs session tokens (HS256). Must be set in production.",
    )
    jwt_issuer: str = Field("factoryops", description="Issuer claim written into and required of tokens.")
    access_token_minutes: int = Field(15, description="Lifetime of an access token, in minutes.")
    refresh_token_hours: int = Field(12, description="Lifetime of a session (refresh token), in hours.")
    bcrypt_rounds: int = Field(12, description="bcrypt cost factor for password hashes.")
    password_min_length: int = Field(10, description="Minimum length of a password.")
    lockout_threshold: int = Field(5, description="Failed logins in a row that lock an account.")
    lockout_minutes: int = Field(15, description="How long a locked account stays locked, in minutes.")
    login_rate_per_minute: int = Field(
        20, description="Login attempts allowed per client address and minute before HTTP 429."
    )


class MqttSettings(BaseModel):
    embedded: bool = Field(
        True, description="Run an MQTT broker inside `factoryops up` (ignored by the split services)."
    )
    host: str = Field("127.0.0.1", description="Broker host the telemetry service connects to.")
    port: int = Field(18830, description="Broker port (the embedded broker listens here).")
    username: str | None = Field(None, description="Username of the telemetry service at the broker.")
    password: SecretStr | None = Field(None, description="Password of the telemetry service at the broker.")
    shared_group: str = Field(
        "factoryops", description="Shared-subscription group of the telemetry processes; empty: a plain subscription."
    )
    receive_maximum: int = Field(
        1000, ge=1, le=65_000, description="Unacknowledged QoS 1 messages the broker may have out to one process."
    )
    session_expiry_seconds: int = Field(
        7 * 24 * 3600, description="How long the broker keeps the telemetry session (and its messages) while away."
    )
    reconnect_max_seconds: float = Field(30.0, description="Longest wait between reconnection attempts.")
    max_payload_bytes: int = Field(65_536, description="Largest telemetry message accepted; bigger ones are rejected.")
    max_properties_per_device: int = Field(
        500,
        ge=0,
        description="Properties one device may have (0: no limit). A new metric name beyond it is dropped with "
        "reason too_many_properties and a property_limit system alert: a firmware that puts changing values in "
        "its key names would otherwise grow the registry and the time-series store's series without end.",
    )
    max_properties_per_factory: int = Field(
        10_000, ge=0, description="Properties of one factory's vocabulary (0: no limit); beyond it, as per device."
    )
    mosquitto_config_dir: Path | None = Field(
        None, description="Write Mosquitto's password file and ACL here from the device registry (empty: off)."
    )
    mosquitto_pid_file: Path | None = Field(None, description="Mosquitto's pid file, to make it reload (SIGHUP).")
    emqx_hook_secret: SecretStr | None = Field(
        None, description="Bearer secret EMQX sends to the HTTP authentication/authorisation endpoints (empty: off)."
    )
    tls: bool = Field(
        False,
        description="Connect to the broker over TLS (usually port 8883; the embedded broker speaks plain MQTT "
        "only). See docs/tls.md.",
    )
    tls_ca_file: Path | None = Field(
        None, description="PEM CA certificate(s) that signed the broker's certificate; empty: the system's CAs."
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM client certificate shown to the broker (optional; with `tls_key_file`)."
    )
    tls_key_file: Path | None = Field(None, description="Unencrypted PEM private key of `tls_cert_file`.")
    private_network: bool = Field(
        False,
        description="The telemetry service reaches an external broker over a private network only (e.g. the "
        "compose network): production then does not warn about plain MQTT on that link. Devices still need "
        "the broker's TLS listener. See docs/tls.md.",
    )
    tls_insecure: bool = Field(
        False,
        description="Accept a broker certificate that does not name the host (the chain is still verified). "
        "For tests only; never in production.",
    )

    @model_validator(mode="after")
    def _tls_settings_fit(self) -> MqttSettings:
        _both_or_neither(self.tls_cert_file, self.tls_key_file, "FACTORYOPS_MQTT__TLS")
        if not self.tls and (self.tls_ca_file or self.tls_cert_file or self.tls_insecure):
            raise ValueError(
                "FACTORYOPS_MQTT__TLS_* files or TLS_INSECURE are set but FACTORYOPS_MQTT__TLS is false: "
                "set FACTORYOPS_MQTT__TLS=true to connect over TLS, or remove them"
            )
        return self


class TimeseriesSettings(BaseModel):
    backend: str = Field("embedded", description="`embedded` (file in the data folder) or `influxdb`.")
    influx_url: str = Field("http://127.0.0.1:8086", description="InfluxDB base URL (v1 HTTP API).")
    influx_database: str = Field("factoryops", description="InfluxDB database name.")
    influx_username: str | None = Field(None, description="InfluxDB user, if auth is enabled.")
    influx_password: SecretStr | None = Field(None, description="InfluxDB password, if auth is enabled.")
    raw_retention_days: int = Field(
        30,
        ge=0,
        description="Days raw telemetry points are kept at most (0: forever); a factory's super admin can "
        "keep its own for less time (docs/timeseries.md).",
    )
    rollup_1m_retention_days: int = Field(
        365,
        ge=0,
        description="Days the 1-minute rollups are kept at most (0: forever); at least the raw retention.",
    )
    rollup_1h_retention_days: int = Field(
        0,
        ge=0,
        description="Days the 1-hour rollups are kept at most (0: forever); at least the 1-minute retention.",
    )


class ObjectStoreSettings(BaseModel):
    backend: str = Field("local", description="`local` (folder in the data folder) or `s3`.")
    s3_endpoint: str | None = Field(None, description="S3 / MinIO endpoint URL, e.g. http://minio:9000.")
    s3_bucket: str = Field("factoryops", description="Bucket holding every factory's prefix.")
    s3_access_key: SecretStr | None = Field(None, description="S3 access key.")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret key.")
    s3_region: str = Field("us-east-1", description="S3 region.")


class NotificationSettings(BaseModel):
    portal_url: str = Field(
        "",
        description="The portal's address as people reach it (e.g. https://factoryops.plant.example): alert "
        "notifications link to the alert's page. Empty: no link.",
    )
    smtp_host: str = Field("", description="SMTP server for alert emails (empty: email is off).")
    smtp_port: int = Field(587, description="SMTP port (587 with STARTTLS, 465 with TLS, 25 plain).")
    smtp_username: str | None = Field(None, description="SMTP user, if the server needs one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_ssl: bool = Field(False, description="Connect to SMTP over TLS from the start (port 465).")
    smtp_from: str = Field("factoryops@localhost", description="Sender address of alert emails.")
    twilio_base_url: str = Field("https://api.twilio.com", description="Twilio API base URL.")
    twilio_account_sid: str = Field("", description="Twilio account SID (empty: WhatsApp is off).")
    twilio_auth_token: SecretStr | None = Field(None, description="Twilio auth token.")
    twilio_whatsapp_from: str = Field("", description="WhatsApp sender number, E.164, e.g. +14155238886.")
    twilio_whatsapp_content_sid: str = Field(
        "",
        description="Content SID (HX...) of an approved WhatsApp template with two variables: {{1}} the "
        "subject, {{2}} the details. WhatsApp takes a message the business starts (an alert) outside a "
        "24-hour conversation only as an approved template. Empty: a free-form body, which Twilio's sandbox "
        "and an open conversation accept.",
    )
    timeout_seconds: float = Field(15.0, description="Timeout of one delivery attempt.")
    max_attempts: int = Field(5, ge=1, le=20, description="Delivery attempts before a notification is failed.")
    reminder_max: int = Field(
        3, ge=0, le=100, description="Reminders sent at most per alert that stays open and unacknowledged."
    )
    flood_max_per_window: int = Field(
        5,
        ge=0,
        description="Notifications per rule and device in one flood window; the rest are suppressed and "
        "summarised in a digest (0: no cap).",
    )
    flood_window_seconds: int = Field(
        3600, ge=1, description="Length of the flood window; its digest goes out when it ends."
    )
    sweep_seconds: float = Field(15.0, gt=0, description="How often workers look for reminders that are due.")
    announce_grace_seconds: float = Field(
        30.0,
        ge=1,
        description="An alert opened or resolved whose notifications were not queued after this long (its "
        "telemetry process stopped in between) is announced by a worker's sweep instead.",
    )
    system_alert_write_seconds: float = Field(
        5.0, ge=0, description="A repeating system alert updates its row (last seen, occurrences) at most this often."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACTORYOPS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Environment = Field(Environment.development, description="`development` or `production`.")
    data_dir: Path = Field(
        Path(".factoryops"), description="Folder for the embedded database, broker, stores and spool."
    )
    log_level: str = Field("INFO", description="Log level of every process.")
    log_format: str = Field(
        "text",
        pattern="^(text|json)$",
        description="`text` (lines for people) or `json` (one JSON object per line with the time, level, "
        "process and the factory, device, job or request it concerns; for log collectors in production).",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="Port on which `factoryops telemetry` and `factoryops worker` serve Prometheus metrics at "
        "/metrics, on the HTTP host address (0: off). The API serves /metrics on its own port.",
    )
    service_heartbeat_seconds: float = Field(
        10.0,
        gt=0,
        description="How often each telemetry and worker process records its heartbeat and figures for the "
        "root's platform health page.",
    )
    gc_freeze_seconds: float = Field(
        2.0,
        ge=0,
        description="How often `factoryops telemetry` and `factoryops up` move their long-lived objects (the rules' "
        "per-device state) out of Python's full garbage collections, which otherwise stop every thread for up to a "
        "second at 10,000 devices (0: off; see docs/observability.md).",
    )
    gc_full_collect_hours: float = Field(
        6.0,
        ge=0,
        description="How often those processes collect everything, frozen objects included, to free what became "
        "garbage after it was frozen (0: never).",
    )
    root_email: str = Field("root@factoryops.local", description="Email of the platform root account.")
    root_password: SecretStr | None = Field(
        None,
        description="Password of the platform root, used on first start; empty: one is generated and printed.",
    )
    telemetry_name: str = Field(
        "",
        description="Stable name of this telemetry process (MQTT client id and spool file); "
        "set a distinct one per process so a restarted process resumes its broker session.",
    )
    telemetry_health_after_seconds: float = Field(
        30.0, description="Raise the system-health alert after the time-series store fails this long."
    )
    web_dir: Path | None = Field(
        None, description="Folder of the built web portal; empty: the one shipped in the package."
    )
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP server of the API and web portal.")
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Metadata database (devices, users, rules, alerts, jobs)."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Sign-in, sessions and password policy.")
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="MQTT broker of the devices.")
    timeseries: TimeseriesSettings = Field(
        default_factory=TimeseriesSettings, description="Telemetry time-series store."
    )
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings, description="Email (SMTP) and WhatsApp (Twilio) delivery."
    )
    objectstore: ObjectStoreSettings = Field(
        default_factory=ObjectStoreSettings, description="Object storage for datasets, models and reports."
    )

    @model_validator(mode="after")
    def _production_needs_a_real_secret(self) -> Settings:
        if self.env == Environment.production:
            secret = self.auth.jwt_secret.get_secret_value()
            if not secret or secret == DEFAULT_JWT_SECRET or len(secret) < 32:
                raise ValueError(
                    "FACTORYOPS_AUTH__JWT_SECRET must be set to a random value of at least 32 characters "
                    "in production (FACTORYOPS_ENV=production)."
                )
        return self

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'factoryops.db').resolve()}"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, every secret replaced by ``********``."""

        def walk(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return "********" if value.get_secret_value() else ""
            if isinstance(value, BaseModel):
                return {name: walk(getattr(value, name)) for name in type(value).model_fields}
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, StrEnum):
                return value.value
            return value

        data = walk(self)
        url = data["database"]["url"]
        if url and "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            data["database"]["url"] = f"{scheme}://{user}:********@{host}" if ":" in creds else url
        data["database"]["effective_url"] = data["database"]["url"] if self.database.url else self.database_url
        return data


def settings_reference() -> str:
    """Every setting as a Markdown table: environment variable, default, description."""
    rows = ["| variable | default | description |", "| --- | --- | --- |"]

    def default_of(field: Any) -> str:
        value = field.default_factory() if field.default_factory is not None else field.default
        if isinstance(value, SecretStr):
            return "(set it)" if value.get_secret_value() == DEFAULT_JWT_SECRET else ""
        if isinstance(value, StrEnum):
            return value.value
        if value is None or value == []:
            return ""
        return str(value)

    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, subfield in annotation.model_fields.items():
                env = f"FACTORYOPS_{name.upper()}__{sub.upper()}"
                rows.append(f"| `{env}` | `{default_of(subfield)}` | {subfield.description} |")
        else:
            rows.append(f"| `FACTORYOPS_{name.upper()}` | `{default_of(field)}` | {field.description} |")
    return "\n".join(rows).replace("``", "") + "\n"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
