"""Settings: defaults < ``config.toml`` in the data directory < ``OCTET_*`` env < CLI flags."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import platformdirs

from pipeline.core.errors import ConfigError

DEFAULT_CATEGORIES = ("cs.AI", "cs.CL", "cs.CV", "cs.LG", "cs.RO", "cs.SD", "eess.AS")

STAGES = ("classify", "summarize", "reading")
"""The stages ``octet run`` can run after storing, in the order it runs them."""


@dataclass(frozen=True)
class Settings:
    """Every setting Octet reads. Field names are the ``config.toml`` keys; the
    environment variable is ``OCTET_`` + the upper-cased name."""

    home: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("octet")))
    """The data directory: database, config.toml, logs, lock (``OCTET_HOME``)."""

    db: Path | None = None
    """The DuckDB file (``OCTET_DB``); default ``<home>/octet.duckdb``."""

    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    """arXiv categories to follow (``OCTET_CATEGORIES``, comma-separated)."""

    arxiv_rss_url: str = "https://rss.arxiv.org/rss/"
    """Base of the RSS listing feed; categories are appended as ``cs.CL+cs.CV``."""

    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    """The arXiv API query endpoint."""

    arxiv_delay: float = 3.0
    """Seconds between two requests to arXiv (arXiv asks for at least 3)."""

    http_timeout: float = 30.0
    """Seconds before one HTTP request is abandoned and retried."""

    http_retries: int = 5
    """Retries after a failed request (timeouts, resets, 429, 5xx, bad bodies)."""

    api_batch_size: int = 100
    """Ids per API request when hydrating papers announced by RSS."""

    stages: tuple[str, ...] = STAGES
    """Stages ``octet run`` runs after storing (``OCTET_STAGES``; ``none`` for fetch-only)."""

    timezone: str = ""
    """The reader's IANA time zone (``Europe/Berlin``); empty means the system's."""

    summarizer: str = "auto"
    """Summary backend: ``auto``, ``extractive``, ``hf`` or ``openai``."""

    model: str = ""
    """Model for the ``hf`` (a Hugging Face id or local folder) or ``openai`` backend."""

    device: str = "auto"
    """Device for the ``hf`` backend: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    batch_size: int = 8
    """Papers per generation batch."""

    max_new_tokens: int = 256
    """Hard cap on generated tokens per summary."""

    openai_base_url: str = "http://127.0.0.1:8000/v1"
    """Base URL of an OpenAI-compatible server."""

    openai_api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable that holds the server's API key."""

    openai_concurrency: int = 4
    """Requests in flight at once to the OpenAI-compatible server."""

    @property
    def db_path(self) -> Path:
        """The database file this configuration points at."""
        return Path(self.db) if self.db else self.home / "octet.duckdb"

    @property
    def demo_db_path(self) -> Path:
        """The demo database: never the reader's own."""
        return self.home / "demo.duckdb"

    def rss_url(self, categories: tuple[str, ...] | None = None) -> str:
        """The RSS URL for the categories: ``<base>cs.CL+cs.CV``."""
        base = self.arxiv_rss_url if self.arxiv_rss_url.endswith("/") else self.arxiv_rss_url + "/"
        return base + "+".join(categories or self.categories)


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _convert(name: str, value, source: str):
    kind = _FIELD_TYPES[name]
    try:
        if "tuple" in kind:
            items = value.split(",") if isinstance(value, str) else list(value)
            cleaned = tuple(item.strip() for item in items if item.strip())
            if name == "stages":
                return _stages(cleaned)
            if not cleaned:
                raise ValueError("empty list")
            return cleaned
        if "Path" in kind:
            return Path(os.path.expanduser(str(value))) if value not in ("", None) else None
        if kind == "float":
            number = float(value)
            if number < 0:
                raise ValueError("negative")
            return number
        if kind == "int":
            number = int(value)
            if number < 0:
                raise ValueError("negative")
            return number
        return str(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {name} = {value!r} is not valid ({error}); "
                          f"fix or remove it") from None


def _stages(names: tuple[str, ...]) -> tuple[str, ...]:
    if names in ((), ("none",)):
        return ()
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; use {', '.join(STAGES)} or none")
    return names


def _from_env(environ) -> dict:
    found = {}
    for name in _FIELD_TYPES:
        key = "OCTET_" + name.upper()
        if environ.get(key, "") != "":
            found[name] = _convert(name, environ[key], f"environment {key}")
    return found


def _from_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML ({error}); fix or delete it") from None
    found = {}
    for name, value in data.items():
        if name not in _FIELD_TYPES or name == "home":
            raise ConfigError(f"{path}: unknown setting {name!r}; known: "
                              + ", ".join(n for n in _FIELD_TYPES if n != "home"))
        found[name] = _convert(name, value, str(path))
    return found


def load_settings(overrides: dict | None = None, environ=None) -> Settings:
    """Settings from all layers; ``overrides`` (CLI flags) win, ``None`` values are ignored."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    home_layers = {**_from_env(environ), **{k: _convert(k, v, "flag") for k, v in flags.items()}}
    settings = Settings()
    if "home" in home_layers:
        settings = replace(settings, home=home_layers["home"])
    values = _from_file(settings.home / "config.toml")
    values.update(home_layers)
    return replace(settings, **values)
