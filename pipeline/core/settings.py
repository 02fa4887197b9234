"""Settings: defaults < ``config.toml`` in the data directory < ``OCTET_*`` env < CLI flags.

Every value is validated when settings load, before anything runs: numbers finite and in
range, config.toml values of the right type, names from their lists, paths and strings free
of control characters. A bad one is a ``ConfigError`` (exit 2): one line naming the setting
where it was given (the flag, the environment variable or the config.toml path).
"""
from __future__ import annotations

import email.errors
import email.policy
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from pipeline.core.errors import ConfigError
from pipeline.core.paper import find_control
from pipeline.core.weeks import reader_zone

DEFAULT_CATEGORIES = ("cs.AI", "cs.CL", "cs.CV", "cs.LG", "cs.RO", "cs.SD", "eess.AS")

STAGES = ("classify", "summarize", "reading")
"""The stages ``octet run`` can run after storing, in the order it runs them."""

SUMMARIZERS = ("auto", "extractive", "hf", "openai")
"""The summary backends the ``summarizer`` setting may name."""

DEVICES = ("auto", "cpu", "cuda", "mps")
"""The devices the ``device`` setting may name; ``cuda:N`` picks one GPU."""

FAMILIES_JUDGE_MODES = ("off", "recheck")
"""What ``octet run`` does with the LLM family judge: nothing, or re-check the papers the
head is unsure of (needs a generative ``summarizer`` and ``model``)."""


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

    http_timeout: float = 60.0
    """The deadline of one HTTP request, in seconds: connecting, the headers and the whole
    body (to arXiv and to the summary server). A request not finished by then is abandoned
    and retried like any timeout, however steadily the server keeps sending."""

    http_retries: int = 5
    """Retries after a failed request (timeouts, resets, 429, 5xx, bad bodies)."""

    http_retry_budget: float = 600.0
    """Seconds one run may spend waiting between retries (backoff and ``Retry-After``), for
    arXiv and for the summary server each; when the next wait would pass it, the request
    fails and the run says the budget is spent."""

    http_max_bytes: int = 32 * 1024 * 1024
    """The largest answer read from arXiv, in bytes (32 MiB; a day's feed of 2,000 papers is
    a few MB). A longer one is refused while it is read, and nothing of it is stored."""

    lock_max_age: float = 6 * 3600.0
    """Seconds after which a run lock still held by a live process is reported as stuck
    (exit 1) instead of being waited on silently (6 hours)."""

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

    openai_concurrency: int = 64
    """Requests in flight at once to the OpenAI-compatible server (enough to keep a vLLM or
    SGLang batch on one GPU full; a llama.cpp or Ollama server queues what it cannot run)."""

    families_judge: str = "off"
    """``off``, or ``recheck``: after classifying, ``octet run`` asks the LLM judge about the
    papers whose head scores are uncertain (``octet classify --backend llm --recheck``)."""

    app_url: str = "http://localhost:8501"
    """Where the reader opens the app (``octet app``); the digest and the feed link every
    paper to its page there, ``<app_url>/?paper=ID``."""

    digest_per_family: int = 3
    """Papers per family in the weekly digest and the feed."""

    smtp_url: str = ""
    """The mail server for ``octet digest --send``: ``smtp://host:587`` (STARTTLS when the
    server offers it) or ``smtps://host:465`` (TLS from the start); empty: no e-mail."""

    smtp_user: str = ""
    """The SMTP login name; empty: send without logging in (a local relay)."""

    smtp_password_env: str = "OCTET_SMTP_PASSWORD"
    """The name of the environment variable that holds the SMTP password (the password
    itself is never stored in config.toml or printed)."""

    digest_to: tuple[str, ...] = ()
    """Who gets the digest by e-mail (``OCTET_DIGEST_TO``, comma-separated addresses)."""

    digest_from: str = ""
    """The digest's From address; default ``smtp_user`` when it is an address."""

    webhook_url: str = ""
    """An http(s) URL that receives the digest as JSON (``octet digest --send``); empty:
    no webhook. Slack, Discord, Feishu or Matrix bridges can post it."""

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

_RANGES = {
    "arxiv_delay": (0, 3600), "http_timeout": (0, 3600), "http_retries": (0, 100),
    "http_retry_budget": (0, 86400), "http_max_bytes": (1024, 16 * 1024 ** 3),
    "lock_max_age": (0, 30 * 86400), "api_batch_size": (1, 2000), "batch_size": (1, 4096),
    "max_new_tokens": (1, 32768), "openai_concurrency": (1, 256), "digest_per_family": (1, 20),
}
"""Allowed ``(lowest, highest)`` of numeric settings; any other number must be at least 0."""

_ABOVE_ZERO = frozenset({"http_timeout", "lock_max_age"})
"""Numeric settings for which 0 makes no sense (a timeout of 0 fails every request)."""

_CATEGORY = re.compile(r"[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?", re.ASCII)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+\.[^@\s<>(),;:\"\[\]\\]+|"
                      r"[^@\s<>(),;:\"\[\]\\]+@localhost")
_DEVICE = re.compile(r"auto|cpu|cuda|cuda:\d+|mps", re.ASCII)


def _kind(name: str) -> str:
    """The setting's base type: tuple, path, bool, float, int or str."""
    declared = _FIELD_TYPES[name]
    for kind in ("tuple", "Path", "bool", "float", "int"):
        if kind in declared:
            return kind.lower()
    return "str"


_TOML_TYPES = {"tuple": (str, list), "path": (str,), "bool": (bool,), "float": (int, float),
               "int": (int,), "str": (str,)}


def _check_toml_type(name: str, value) -> None:
    """config.toml values are typed: ``http_retries = "3"`` or ``= true`` is a mistake."""
    wanted = _TOML_TYPES[_kind(name)]
    if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
        names = {str: "a string", list: "a list", bool: "true or false", int: "a whole number",
                 float: "a number"}
        raise ValueError(f"must be {' or '.join(names[kind] for kind in wanted)}, "
                         f"not {type(value).__name__}")


def _convert(name: str, value, where: str, typed: bool = False):
    """The setting's value from one layer, validated; ``where`` names the setting as that layer
    spells it (``--batch-size``, ``environment variable OCTET_DB``, ``<config.toml>: db``) and
    ``typed`` marks config.toml values. Raises ``ConfigError``: one line with the fix."""
    try:
        if typed:
            _check_toml_type(name, value)
        return _PARSERS[_kind(name)](name, value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where} {error} (got {_shown(value, name)}); fix or remove it") from None


_SECRET_URLS = frozenset({"webhook_url"})
"""Settings whose URL carries a secret (Slack and Discord put it in the path): an error
shows their scheme and host only."""


def _shown(value, name: str = "") -> str:
    """The value as the error shows it: quoted, escaped (one line), and not too long."""
    if name in _SECRET_URLS and isinstance(value, str):
        parts = urlsplit(value.strip())
        value = f"{parts.scheme}://{parts.hostname or ''}/…" if parts.scheme else "…"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _tuple(name: str, value) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    if any(not isinstance(item, str) for item in items):
        raise ValueError("must be a list of strings")
    cleaned = tuple(item.strip() for item in items if item.strip())
    if name == "stages":
        return _stages(cleaned)
    if name == "digest_to":
        return tuple(_check_address(item) for item in cleaned)
    if not cleaned:
        raise ValueError("must not be empty")
    if name == "categories":
        _check_categories(cleaned)
    return cleaned


def _check_categories(categories: tuple[str, ...]) -> None:
    # They become part of the feed URL, so nothing but an arXiv category name may pass.
    for category in categories:
        if not _CATEGORY.fullmatch(category):
            raise ValueError(f"must be arXiv categories such as cs.CL or hep-th, not {category!r}")


def _path(name: str, value) -> Path | None:
    text = os.fspath(value)
    if text == "":
        if name == "home":
            raise ValueError("must not be empty")
        return None
    _check_text(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8; use another folder name") from None
    return Path(os.path.expanduser(text))


def _check_text(text: str) -> None:
    # A newline in a path or URL ends up in a crontab line, a unit file or an HTTP request.
    control = find_control(text)
    if control is not None:
        raise ValueError(f"must not contain control characters such as {control!r}")


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("must be true or false")
    return text in ("1", "true", "yes", "on")


def _float(name: str, value) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return _in_range(name, number)


def _int(name: str, value) -> int:
    if isinstance(value, float) or (isinstance(value, str) and not value.strip().lstrip("+-").isdigit()):
        raise ValueError("must be a whole number")
    return _in_range(name, int(value))


def _in_range(name: str, number):
    lowest, highest = _RANGES.get(name, (0, None))
    if name in _ABOVE_ZERO and number <= 0:
        raise ValueError("must be above 0")
    if number < lowest or (highest is not None and number > highest):
        raise ValueError(f"must be at least {lowest}" if number < lowest else f"must be at most {highest}")
    return number


def _str(name: str, value) -> str:
    text = str(value).strip()
    _check_text(text)
    check = _STRING_CHECKS.get(name) or (_check_url if name.endswith("_url") else None)
    return check(text) if check else text


def _check_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return text


def _check_webhook_url(text: str) -> str:
    if not text:
        return text
    parts = urlsplit(_check_url(text))
    try:
        parts.port
    except ValueError:
        raise ValueError("has a bad port; use https://host/path") from None
    if not parts.hostname:
        raise ValueError("must name a host: https://host/path")
    return text


def _check_smtp_url(text: str) -> str:
    if not text:
        return text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or port == -1 or \
            parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("must be smtp://host:port or smtps://host:port (the login goes in "
                         "smtp_user, the password in the variable smtp_password_env names)")
    return text


def _check_address(text: str) -> str:
    """One e-mail address, bare or with a name: ``me@example.org``, ``Me <me@example.org>``;
    read as a mail header reads it, so that the mailbox checked is the one mailed."""
    text = text.strip()
    _check_text(text)  # a line break in an address would start a header of its own
    try:
        header = email.policy.default.header_factory("To", text)
        addresses, defects = header.addresses, header.defects
    except (ValueError, TypeError, IndexError):  # e.g. a line break in an encoded word
        addresses, defects = (), ()
    serious = [d for d in defects if not isinstance(d, email.errors.ObsoleteHeaderDefect)]
    mailbox = addresses[0].addr_spec if len(addresses) == 1 else ""
    if serious or not mailbox.isascii() or not _ADDRESS.fullmatch(mailbox):
        raise ValueError(f"must be e-mail addresses such as me@example.org or "
                         f"Me <me@example.org>, not {text!r}")
    return text


def _check_optional_address(text: str) -> str:
    return _check_address(text) if text else text


def _check_summarizer(text: str) -> str:
    if text.lower() not in SUMMARIZERS:
        raise ValueError(f"must be one of {', '.join(SUMMARIZERS)}")
    return text.lower()


def _check_families_judge(text: str) -> str:
    if text.lower() not in FAMILIES_JUDGE_MODES:
        raise ValueError(f"must be one of {', '.join(FAMILIES_JUDGE_MODES)}")
    return text.lower()


def _check_device(text: str) -> str:
    if not _DEVICE.fullmatch(text.lower()):
        raise ValueError(f"must be one of {', '.join(DEVICES)} or cuda:N")
    return text.lower()


def _check_timezone(text: str) -> str:
    if text:
        try:
            reader_zone(text)
        except ConfigError:
            raise ValueError("must be an IANA time zone such as Europe/Berlin, or empty for the "
                             "system's") from None
    return text


def _check_variable(text: str) -> str:
    if not _VARIABLE.fullmatch(text):
        raise ValueError("must be the name of an environment variable, such as OPENAI_API_KEY")
    return text


_STRING_CHECKS = {"summarizer": _check_summarizer, "device": _check_device,
                  "timezone": _check_timezone, "openai_api_key_env": _check_variable,
                  "families_judge": _check_families_judge, "smtp_url": _check_smtp_url,
                  "webhook_url": _check_webhook_url, "smtp_password_env": _check_variable,
                  "digest_from": _check_optional_address}
_PARSERS = {"tuple": _tuple, "path": _path, "bool": _bool, "float": _float, "int": _int,
            "str": _str}


def _stages(names: tuple[str, ...]) -> tuple[str, ...]:
    if names in ((), ("none",)):
        return ()
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ValueError(f"must be {', '.join(STAGES)} or none")
    return names


def _from_env(environ) -> dict:
    found = {}
    for name in _FIELD_TYPES:
        key = "OCTET_" + name.upper()
        if environ.get(key, "") != "":
            found[name] = _convert(name, environ[key], f"environment variable {key}")
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
        found[name] = _convert(name, value, f"{path}: {name}", typed=True)
    return found


def load_settings(overrides: dict | None = None, environ=None) -> Settings:
    """Settings from all layers; ``overrides`` (CLI flags) win, ``None`` values are ignored."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    home_layers = {**_from_env(environ),
                   **{k: _convert(k, v, f"--{k.replace('_', '-')}") for k, v in flags.items()}}
    settings = Settings()
    if "home" in home_layers:
        settings = replace(settings, home=home_layers["home"])
    values = _from_file(settings.home / "config.toml")
    values.update(home_layers)
    return replace(settings, **values)
