"""Versioned prompt templates (``<task>.v<N>.jinja``) and the helpers that render them.

The file name is the version: changing a prompt means adding ``summarize.v2.jinja``,
so every stored output names the prompt that produced it and old outputs become stale.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

import jinja2

SUMMARY_PROMPT = "summarize.v1"
"""The prompt version the generative backends use now."""

FAMILIES_PROMPT = "families.v1"
"""The prompt version the LLM family judge uses now (part of every judgement's provenance)."""

MAX_ABSTRACT_CHARACTERS = 4000
"""arXiv caps abstracts at 1,920 characters; anything far longer is not an abstract."""

# The tags that delimit untrusted text in the prompt; text must not be able to close or
# open them in any spelling a model may read as one: any case, whitespace, attributes,
# small-form and full-width brackets, or no closing bracket at all.
_OPENING, _CLOSING = "<\ufe64", ">\ufe65"
_DELIMITER_START = re.compile(rf"[{_OPENING}]\s*/?\s*(?P<name>paper|title|abstract)\b",
                              re.IGNORECASE)
_DELIMITER_TAG = re.compile(rf"{_DELIMITER_START.pattern}[^{_OPENING}{_CLOSING}]{{0,200}}"
                            rf"[{_CLOSING}]", re.IGNORECASE)
# Full-width ASCII (U+FF01-FF5E) read as ASCII, so "＜／ａｂｓｔｒａｃｔ＞" is the tag it mimics.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_MAX_PASSES = 8


@lru_cache(maxsize=8)
def load_template(name: str = SUMMARY_PROMPT) -> jinja2.Template:
    """The packaged template ``prompts/<name>.jinja`` (plain text out: no HTML escaping)."""
    source = resources.files("prompts") / f"{name}.jinja"
    if not source.is_file():
        raise FileNotFoundError(f"no prompt template {name}.jinja in the prompts package; "
                                f"reinstall Octet or pick an existing version")
    environment = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    return environment.from_string(source.read_text(encoding="utf-8"))


def _visible(text: str) -> str:
    """Format characters (category Cf: zero-width, soft hyphen, word joiner, BOM, bidi and
    tag characters) dropped, so none can split a tag; other controls become spaces."""
    kept = []
    for char in text:
        kind = unicodedata.category(char)
        if kind != "Cf":
            kept.append(" " if kind == "Cc" else char)
    return "".join(kept).translate(_FULL_WIDTH)


def _without_delimiters(text: str) -> str:
    """Every delimiter-like tag replaced by a space, until none is left (removing one can
    join the text around it into another); past a few passes every bracket goes."""
    for _ in range(_MAX_PASSES):
        stripped = _DELIMITER_TAG.sub(" ", text)
        if stripped == text:
            # No whole tag left: an opening never closed loses only its bracket (the word
            # may be text, as in "x < title").
            stripped = _DELIMITER_START.sub(r" \g<name>", text)
            if stripped == text:
                return text
        text = stripped
    return re.sub(f"[{_OPENING}{_CLOSING}]", " ", text)


def untrusted(text: str | None, limit: int = MAX_ABSTRACT_CHARACTERS) -> str:
    """Paper text made safe to place between the delimiters: format characters dropped,
    delimiter tags (in any spelling) removed, whitespace collapsed, length capped."""
    # Cleaning only shrinks text: four times the limit is plenty, and bounds the work.
    visible = _visible((text or "")[:limit * 4])
    cleaned = " ".join(_without_delimiters(" ".join(visible.split())).split())
    return cleaned[:limit]


def paper_messages(name: str, title: str, abstract: str) -> list[dict[str, str]]:
    """Chat messages (system, user) of the template ``name`` for one paper: the system turn
    is fixed, the user turn holds the paper between the delimiters (made ``untrusted``)."""
    module = load_template(name).module
    return [{"role": "system", "content": str(module.system())},
            {"role": "user", "content": str(module.user(untrusted(title, 1000),
                                                         untrusted(abstract)))}]


def plain_prompt(messages: list[dict[str, str]]) -> str:
    """Chat messages as one plain text, for models without a chat template."""
    return "\n\n".join(message["content"] for message in messages) + "\n\nJSON:"


def summary_messages(title: str, abstract: str,
                     name: str = SUMMARY_PROMPT) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for the JSON summary of one paper."""
    return paper_messages(name, title, abstract)


def summary_text(title: str, abstract: str, name: str = SUMMARY_PROMPT) -> str:
    """The same prompt as one plain text, for models without a chat template."""
    return plain_prompt(summary_messages(title, abstract, name))


def families_messages(title: str, abstract: str,
                      name: str = FAMILIES_PROMPT) -> list[dict[str, str]]:
    """Chat messages (system, user) asking which of the eight families one paper is about;
    the rules are in the system turn, the paper between the delimiters of the user turn."""
    return paper_messages(name, title, abstract)
