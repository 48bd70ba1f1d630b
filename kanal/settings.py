"""Configuration: environment variables, read from ``.env`` via pydantic-settings.

One ``BaseSettings`` per component, each with its ``env_prefix``. ``.env.example``
lists every variable. Empty means "use the embedded default" or "channel off".
Build :class:`Settings` once in ``__main__``/the CLI and pass it down; tests pass values.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_COMMON = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


class KanalSettings(BaseSettings):
    """The gateway itself: ``KANAL_*``."""

    model_config = SettingsConfigDict(**_COMMON, env_prefix="KANAL_")

    secret_key: SecretStr = SecretStr("")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = ""
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    log_format: str = "json"
    # GeoJSON with DKI Jakarta kelurahan polygons (properties: nama, nama_kecamatan, nama_kota).
    # Empty: a coarse built-in outline of DKI Jakarta, and kelurahan names from `areaid`.
    gazetteer_file: str = ""
    session_ttl_hours: float = 24.0
    resume_after_minutes: float = 30.0
    max_photos: int = 3
    # Photos: S3-compatible storage when a bucket is set, else {data_dir}/media.
    media_s3_bucket: str = ""
    media_s3_endpoint_url: str = ""  # empty: AWS; e.g. http://127.0.0.1:9000 for MinIO
    media_s3_access_key: SecretStr = SecretStr("")  # empty: boto3's credential chain
    media_s3_secret_key: SecretStr = SecretStr("")
    media_s3_region: str = ""
    media_s3_prefix: str = "media/"
    # How long a signed media_url sent to the CRM stays valid.
    media_url_ttl_hours: float = 720.0
    # Contacts are purged this many days after the reporter's last report closed.
    vault_retention_days: float = 30.0
    vault_purge_interval_s: float = 3600.0
    # false (default): every report reaches the CRM with a reporter reference of its own, so
    # an officer cannot link one person's reports; true: one stable pseudonym per reporter.
    linkable_reporter: bool = False


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="REDIS_")

    url: str = ""


class CrmSettings(BaseSettings):
    """The CRM the bridge files into: ``CRM_*``. Empty URL: the in-process sandbox."""

    model_config = SettingsConfigDict(**_COMMON, env_prefix="CRM_")

    url: str = ""
    api_key: SecretStr = SecretStr("")
    jurisdiction_id: str = ""
    timeout_s: float = 10.0
    poll_interval_s: float = 30.0
    webhook_secret: SecretStr = SecretStr("")
    # YAML/JSON file: category code -> the CRM's service code, plus `fallback`. Empty: identity.
    service_map: str = ""
    # How often a report the CRM queued (answered with a token) is asked for its id.
    token_poll_s: float = 5.0


class RasaSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="RASA_")

    url: str = ""
    timeout_s: float = 2.0


class Settings(BaseSettings):
    """Everything, grouped by component."""

    model_config = _COMMON

    kanal: KanalSettings = Field(default_factory=KanalSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    rasa: RasaSettings = Field(default_factory=RasaSettings)


__all__ = ["CrmSettings", "KanalSettings", "RasaSettings", "RedisSettings", "Settings"]
