"""Versioned prompt templates (``<task>.v<N>.jinja``) and the helpers that render them.

The file name is the version: changing a prompt means adding ``summarize.v2.jinja``,
so every stored output names the prompt that produced it and old outputs become stale.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import jinja2

SUMMARY_PROMPT = "summarize.v1"
"""The prompt version the generative backends use now."""

MAX_ABSTRACT_CHARACTERS = 4000
"""arXiv caps abstracts at 1,920 characters; anything far longer is not an abstract."""

# The tags that delimit untrusted text in the prompt; text must not be able to close them.
_DELIMITER_TAG = re.compile(r"<\s*/?\s*(?:paper|title|abstract)\s*/?\s*>", re.IGNORECASE)


@lru_cache(maxsize=8)
def load_template(name: str = SUMMARY_PROMPT) -> jinja2.Template:
    """The packaged template ``prompts/<name>.jinja`` (plain text out: no HTML escaping)."""
    source = resources.files("prompts") / f"{name}.jinja"
    if not source.is_file():
        raise FileNotFoundError(f"no prompt template {name}.jinja in the prompts package; "
                                f"reinstall Octet or pick an existing version")
    environment = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    return environment.from_string(source.read_text(encoding="utf-8"))


def untrusted(text: str | None, limit: int = MAX_ABSTRACT_CHARACTERS) -> str:
    """Paper text made safe to place between the delimiters: whitespace collapsed,
    delimiter tags removed, length capped."""
    cleaned = " ".join(_DELIMITER_TAG.sub(" ", text or "").split())
    return cleaned[:limit]


def summary_messages(title: str, abstract: str,
                     name: str = SUMMARY_PROMPT) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for the JSON summary of one paper."""
    module = load_template(name).module
    return [{"role": "system", "content": str(module.system())},
            {"role": "user", "content": str(module.user(untrusted(title, 1000),
                                                         untrusted(abstract)))}]


def summary_text(title: str, abstract: str, name: str = SUMMARY_PROMPT) -> str:
    """The same prompt as one plain text, for models without a chat template."""
    system, user = summary_messages(title, abstract, name)
    return f"{system['content']}\n\n{user['content']}\n\nJSON:"
