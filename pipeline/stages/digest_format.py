"""The digest as Markdown, plain text, HTML (for mail clients) and JSON (for webhooks).

Paper, model and reader text never forms structure here: in Markdown it is escaped
(``escape_markdown``: no heading, link, fence or HTML can form), in HTML every text and
attribute is ``html.escape``d, and the plain text holds no control characters (the digest
dropped them when it was built). In every format ``defuse`` puts an invisible word joiner
where a mail client or chat app would make a link or a mention by itself (``http:``,
``www.``, ``@everyone``). Links are only the ones Octet makes (arXiv and the app).

The HTML is for mail: inline styles, tables for layout, no script, no remote image, a
light palette that a dark-mode client (Apple Mail, Outlook, Gmail apps) may invert, and a
``prefers-color-scheme`` block for clients that honour it.
"""
from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

from pipeline.core.families import BY_CODE, FAMILY_COLOURS
from pipeline.core.weeks import week_monday
from pipeline.stages.digest import Digest, DigestPaper, LastRead
from pipeline.stages.obsidian import escape_markdown

FORMATS = ("md", "html", "text")
"""The formats ``octet digest --format`` writes."""

DISCORD_CHARS = 2000
"""Discord refuses a message longer than this; the webhook's ``content`` is cut to it."""


WORD_JOINER = "\u2060"
"""Invisible, and no renderer starts a link or a mention across it."""

_AUTOLINK = re.compile(r"(?<=:)(?=\S)|(?<=@)(?=\w)|(?<=\bwww)(?=\.)", re.IGNORECASE)


class FormatError(ValueError):
    """An unknown format; the message lists the known ones."""


def render(digest: Digest, form: str = "md") -> str:
    """The digest in ``form`` (one of ``FORMATS``)."""
    renderers = {"md": to_markdown, "html": to_html, "text": to_text}
    if form not in renderers:
        raise FormatError(f"unknown format {form!r}; use md, html or text")
    return renderers[form](digest)


def defuse(text: str) -> str:
    """Paper or reader text with a word joiner after ``:`` (``http://``, ``javascript:``),
    ``@`` (``@everyone``, ``me@example.org``) and ``www``: mail clients and chat apps link
    and mention such words in plain text by themselves."""
    return _AUTOLINK.sub(WORD_JOINER, text)


def stars(rating: int | None) -> str:
    """``★★★☆☆`` (empty without a rating)."""
    return "" if not rating else "★" * rating + "☆" * (5 - rating)


def byline(paper: DigestPaper) -> str:
    """``A. Author, B. Author, C. Author et al.`` (plain text)."""
    return ", ".join(paper.authors) + (" et al." if paper.more_authors else "")


def window_line(digest: Digest) -> str:
    """What the family sections cover, in words."""
    if not digest.fresh:
        return ("Nothing new arrived since the last digest; these are the untriaged papers of "
                "the newest listing day.")
    since = digest.since.strftime("%Y-%m-%d") if digest.since else "last week"
    return f"{digest.arrived:,} untriaged papers arrived since {since}; the top of each family:"


def habit_line(digest: Digest) -> str:
    """``Streak: 3 weeks (longest 5) · 12 papers read · next family: SAM``."""
    weeks_word = "week" if digest.streak == 1 else "weeks"
    next_family = BY_CODE[digest.next_family].name if digest.next_family in BY_CODE else ""
    parts = [f"Streak: {digest.streak} {weeks_word} (longest {digest.longest_streak})",
             _count(digest.papers_read, "paper") + " read"]
    if next_family:
        parts.append(f"next family: {digest.next_family} ({next_family}), read "
                     + _count(digest.coverage.get(digest.next_family, 0), "time"))
    return " · ".join(parts)


def _count(number: int, noun: str) -> str:
    """``1 paper``, ``2 papers``, ``0 papers``."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def coverage_line(digest: Digest) -> str:
    """``LLM 5 · LCM 0 · …`` (reads per family)."""
    return " · ".join(f"{code} {count}" for code, count in digest.coverage.items())


def week_title(digest: Digest) -> str:
    """``Octet · week 2026-W49 (from Mon 30 Nov 2026)``."""
    monday = week_monday(digest.week)
    return f"Octet · week {digest.week} (from {monday:%a %d %b %Y})"


# ---- Markdown ------------------------------------------------------------------------------

def _md_url(url: str) -> str:
    """A URL that cannot end a Markdown link early."""
    return quote(url, safe=":/?=&#%.,~+-_@!$*;")


def _md(text: str) -> str:
    """Paper or reader text as Markdown that shows exactly it and forms nothing."""
    return escape_markdown(defuse(text))


def _md_link(text: str, url: str) -> str:
    return f"[{_md(text)}]({_md_url(url)})"


def _md_paper(paper: DigestPaper, bullet: str = "- ") -> list[str]:
    families = ", ".join(paper.families) or "no family"
    lines = [f"{bullet}**{_md_link(paper.title, paper.url)}** · "
             f"{_md_link('in Octet', paper.app_url)}",
             f"  {_md(byline(paper))} · {families}"]
    if paper.tldr:
        lines.append(f"  TL;DR: {_md(paper.tldr)}")
    if paper.why:
        lines.append(f"  *{_md(paper.why)}*")
    return ["  \n".join(lines)]


def to_markdown(digest: Digest) -> str:
    """The digest as Markdown (notes, Obsidian, chat)."""
    out = [f"# {escape_markdown(week_title(digest))}", ""]
    out += _md_pick(digest)
    out += ["", "## What arrived", "", escape_markdown(window_line(digest)), ""]
    for section in digest.sections:
        name = BY_CODE[section.code].name
        out += [f"### {section.code} · {name} ({section.arrived:,} new)", ""]
        for paper in section.papers:
            out += _md_paper(paper)
        out.append("")
    if not digest.sections:
        out += ["No classified paper arrived.", ""]
    out += ["## Your habit", "", escape_markdown(habit_line(digest)), "",
            f"Read per family: {coverage_line(digest)}", ""]
    out += _md_last_week(digest.last_week)
    out += ["", f"[Open Octet]({_md_url(digest.app_url)})", ""]
    return "\n".join(out)


def _md_pick(digest: Digest) -> list[str]:
    if digest.pick is None:
        return ["## This week's paper", "", "No paper stored yet: run `octet run`."]
    out = ["## This week's paper", ""] + _md_paper(digest.pick, "")
    if digest.runners_up:
        out += ["", "**Runners-up**", ""]
        for paper in digest.runners_up:
            out += _md_paper(paper)
    return out


def _md_last_week(last: LastRead | None) -> list[str]:
    if last is None:
        return []
    state = f"read, {stars(last.rating)}" if last.read and last.rating else \
        "read" if last.read else "not marked read"
    out = ["## Last week", "", f"{_md_link(last.paper.title, last.paper.url)} · "
           f"{_md_link('in Octet', last.paper.app_url)} · {escape_markdown(state)}"]
    if last.notes:
        out += [""] + [f"> {_md(line)}" if line else ">"
                       for line in last.notes.split("\n")]
    return out


# ---- plain text ----------------------------------------------------------------------------

def _text_paper(paper: DigestPaper, indent: str = "  ") -> list[str]:
    lines = [f"- {defuse(paper.title)}",
             f"{indent}{defuse(byline(paper))} · {', '.join(paper.families) or 'no family'}"]
    if paper.tldr:
        lines.append(f"{indent}TL;DR: {defuse(paper.tldr)}")
    if paper.why:
        lines.append(f"{indent}Why: {defuse(paper.why)}")
    lines += [f"{indent}arXiv: {paper.url}", f"{indent}In Octet: {paper.app_url}"]
    return lines


def to_text(digest: Digest) -> str:
    """The digest as plain text (terminals and the mail's text part)."""
    title = week_title(digest)
    out = [title, "=" * len(title), "", "THIS WEEK'S PAPER"]
    out += _text_paper(digest.pick) if digest.pick else ["No paper stored yet: run `octet run`."]
    if digest.runners_up:
        out += ["", "RUNNERS-UP"]
        for paper in digest.runners_up:
            out += _text_paper(paper)
    out += ["", "WHAT ARRIVED", window_line(digest)]
    for section in digest.sections:
        out += ["", f"{section.code} · {BY_CODE[section.code].name} ({section.arrived:,} new)"]
        for paper in section.papers:
            out += _text_paper(paper)
    out += ["", "YOUR HABIT", habit_line(digest), f"Read per family: {coverage_line(digest)}"]
    out += _text_last_week(digest.last_week)
    out += ["", f"Open Octet: {digest.app_url}", ""]
    return "\n".join(out)


def _text_last_week(last: LastRead | None) -> list[str]:
    if last is None:
        return []
    state = "read" if last.read else "not marked read"
    rated = f", {stars(last.rating)}" if last.rating else ""
    out = ["", "LAST WEEK", f"- {defuse(last.paper.title)} ({state}{rated})",
           f"  arXiv: {last.paper.url}", f"  In Octet: {last.paper.app_url}"]
    if last.notes:
        out += ["  Your notes:"] + [f"  | {defuse(line)}" for line in last.notes.split("\n")]
    return out


# ---- HTML ----------------------------------------------------------------------------------

_FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_TEXT, _MUTED, _LINK, _CARD, _PAGE, _LINE = \
    "#111827", "#4B5563", "#1D4ED8", "#FFFFFF", "#F3F4F6", "#E5E7EB"
_DARK = """
  :root { color-scheme: light dark; supported-color-schemes: light dark; }
  @media (prefers-color-scheme: dark) {
    .o-page { background: #0F172A !important; }
    .o-card { background: #1E293B !important; border-color: #334155 !important; }
    .o-text { color: #E5E7EB !important; }
    .o-muted { color: #94A3B8 !important; }
    .o-link { color: #93C5FD !important; }
  }"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _t(text: str) -> str:
    """Paper or reader text as HTML text: escaped and defused."""
    return _e(defuse(text))


def _a(text: str, url: str, style: str = "") -> str:
    return (f'<a class="o-link" href="{_e(url)}" style="color:{_LINK};text-decoration:none;'
            f'{style}">{_t(text)}</a>')


def _on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (``#RRGGBB``): WCAG
    relative luminance, black from 0.179 (the app's badges use the same rule); white on the
    lighter family colours fell below a 4.5 contrast."""
    channels = [int(background[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#FFFFFF"


def _badge(code: str) -> str:
    colour = FAMILY_COLOURS.get(code, "#6B7280")
    return (f'<span style="display:inline-block;background:{colour};color:{_on(colour)};'
            f'border-radius:4px;padding:1px 6px;margin-right:4px;font-size:12px;'
            f'font-weight:600;line-height:18px">{_e(code)}</span>')


def _html_paper(paper: DigestPaper, large: bool = False) -> str:
    size = 20 if large else 16
    badges = "".join(_badge(code) for code in paper.families) or \
        f'<span class="o-muted" style="color:{_MUTED};font-size:12px">no family</span>'
    parts = [f'<div style="font-size:{size}px;font-weight:600;line-height:1.3;margin:0 0 4px">'
             f'{_a(paper.title, paper.url)}</div>',
             f'<div class="o-muted" style="color:{_MUTED};font-size:13px;margin:0 0 6px">'
             f'{_t(byline(paper))}</div>', f'<div style="margin:0 0 6px">{badges}</div>']
    if paper.tldr:
        parts.append(f'<div class="o-text" style="color:{_TEXT};font-size:15px;line-height:1.5;'
                     f'margin:0 0 6px"><b>TL;DR</b> {_t(paper.tldr)}</div>')
    if paper.why:
        parts.append(f'<div class="o-muted" style="color:{_MUTED};font-size:13px;'
                     f'font-style:italic;margin:0 0 6px">{_t(paper.why)}</div>')
    parts.append(f'<div style="font-size:13px">{_a("arXiv", paper.url)} &middot; '
                 f'{_a("Open in Octet", paper.app_url)}</div>')
    return "".join(parts)


def _card(inner: str, heading: str = "") -> str:
    title = (f'<div class="o-muted" style="color:{_MUTED};font-size:12px;font-weight:700;'
             f'letter-spacing:.06em;text-transform:uppercase;margin:0 0 10px">{_e(heading)}</div>'
             if heading else "")
    return (f'<tr><td class="o-card" style="background:{_CARD};border:1px solid {_LINE};'
            f'border-radius:8px;padding:16px 18px">{title}{inner}</td></tr>'
            '<tr><td style="height:12px;line-height:12px;font-size:0">&nbsp;</td></tr>')


def _divided(items: list[str]) -> str:
    return (f'<div style="border-top:1px solid {_LINE};margin:12px 0"></div>').join(items)


def to_html(digest: Digest) -> str:
    """The digest as one HTML mail body (inline styles, no script, no remote image)."""
    rows = [_card(_html_pick(digest), "This week's paper")]
    if digest.runners_up:
        rows.append(_card(_divided([_html_paper(p) for p in digest.runners_up]), "Runners-up"))
    rows.append(_card(f'<div class="o-text" style="color:{_TEXT};font-size:14px">'
                      f'{_e(window_line(digest))}</div>', "What arrived"))
    for section in digest.sections:
        heading = f"{section.code} · {BY_CODE[section.code].name} ({section.arrived:,} new)"
        rows.append(_card(_divided([_html_paper(p) for p in section.papers]), heading))
    rows.append(_card(_html_habit(digest), "Your habit"))
    if digest.last_week:
        rows.append(_card(_html_last_week(digest.last_week), "Last week"))
    return _html_page(digest, "".join(rows))


def _html_pick(digest: Digest) -> str:
    if digest.pick is None:
        return f'<div class="o-text" style="color:{_TEXT}">No paper stored yet: run octet run.</div>'
    return _html_paper(digest.pick, large=True)


def _html_habit(digest: Digest) -> str:
    # Tiles that wrap (not a table row): eight in a row are wider than a phone.
    cells = "".join(
        f'<div style="display:inline-block;vertical-align:top;text-align:center;'
        f'padding:2px;margin:0 0 4px">{_badge(code)}'
        f'<div class="o-text" style="color:{_TEXT};font-size:13px">{count}</div></div>'
        for code, count in digest.coverage.items())
    return (f'<div class="o-text" style="color:{_TEXT};font-size:15px;margin:0 0 8px">'
            f'{_e(habit_line(digest))}</div><div>{cells}</div>')


def _html_last_week(last: LastRead) -> str:
    state = f"read {stars(last.rating)}" if last.read and last.rating else \
        "read" if last.read else "not marked read"
    notes = ""
    if last.notes:
        notes = (f'<div class="o-text" style="color:{_TEXT};border-left:3px solid {_LINE};'
                 f'padding:4px 10px;margin:8px 0 0;font-size:14px;white-space:pre-wrap">'
                 f'{_t(last.notes)}</div>')
    return (f'<div style="font-size:16px;font-weight:600">{_a(last.paper.title, last.paper.url)}'
            f'</div><div class="o-muted" style="color:{_MUTED};font-size:13px">{_e(state)} · '
            f'{_a("Open in Octet", last.paper.app_url)}</div>{notes}')


def _html_page(digest: Digest, rows: str) -> str:
    title = week_title(digest)
    outer = (f'<table role="presentation" class="o-page" width="100%" cellpadding="0" '
             f'cellspacing="0" style="background:{_PAGE}"><tr><td align="center" '
             'style="padding:20px 12px">')
    inner = ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
             'style="max-width:640px">')
    heading = (f'<tr><td style="padding:0 4px 14px"><div class="o-text" style="color:{_TEXT};'
               f'font-size:22px;font-weight:700">{_e(title)}</div></td></tr>')
    footer = (f'<tr><td align="center" class="o-muted" style="color:{_MUTED};font-size:12px;'
              f'padding:4px">{_a("Open Octet", digest.app_url)} &middot; sent by Octet, one '
              'paper a week</td></tr>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="supported-color-schemes" content="light dark">
<title>{_e(digest.subject)}</title><style>{_DARK}
</style></head>
<body class="o-page" style="margin:0;padding:0;background:{_PAGE};font-family:{_FONT}">
{outer}
{inner}
{heading}
{rows}
{footer}
</table></td></tr></table></body></html>
"""


# ---- JSON (the webhook's body) -------------------------------------------------------------

def paper_record(paper: DigestPaper, role: str, family: str | None = None) -> dict:
    """One paper of the webhook's ``papers`` list."""
    return {"role": role, "family": family, "arxiv_id": paper.arxiv_id, "title": paper.title,
            "url": paper.url, "app_url": paper.app_url, "families": list(paper.families),
            "tldr": paper.tldr, "why": paper.why}


def to_payload(digest: Digest) -> dict:
    """The webhook's JSON body (shape documented in the README, ``"octet_digest": 1``)."""
    papers = [paper_record(digest.pick, "pick")] if digest.pick else []
    papers += [paper_record(p, "runner-up") for p in digest.runners_up]
    papers += [paper_record(p, "family", s.code) for s in digest.sections for p in s.papers]
    markdown = to_markdown(digest)
    last = digest.last_week
    return {
        "octet_digest": 1, "week": digest.week, "title": digest.subject, "url": digest.app_url,
        "generated_at": digest.generated_at.isoformat(timespec="seconds"), "papers": papers,
        "habit": {"streak": digest.streak, "longest_streak": digest.longest_streak,
                  "papers_read": digest.papers_read, "coverage": digest.coverage,
                  "next_family": digest.next_family},
        "last_week": None if last is None else {**paper_record(last.paper, "last-week"),
                                                "read": last.read, "rating": last.rating,
                                                "notes": last.notes},
        "markdown": markdown, "text": chat_text(markdown),
        "content": chat_content(markdown, digest.app_url),
        "allowed_mentions": {"parse": []}}  # Discord: no @everyone, role or user pings


def chat_text(markdown: str) -> str:
    """The Markdown for Slack, Mattermost and Teams (``text``): Slack reads ``<…>`` as a
    link or a mention even after a backslash, so the escaped ``<``, ``>`` and ``&`` of
    paper text become entities, which Markdown and Slack both show as the character."""
    return re.sub(r"\\(.)", lambda escaped: html.escape(escaped[1]) if escaped[1] in "&<>"
                  else escaped[0], markdown)


def chat_content(markdown: str, app_url: str) -> str:
    """The Markdown cut to ``DISCORD_CHARS`` (``content``) at a line's end, with a link to
    the app when cut."""
    if len(markdown) <= DISCORD_CHARS:
        return markdown
    more = f"\n\n[More in Octet]({_md_url(app_url)})"
    more = more if len(more) <= DISCORD_CHARS // 4 else "\n\nMore in Octet."
    return markdown[:DISCORD_CHARS - len(more)].rsplit("\n", 1)[0] + more


def to_json(digest: Digest) -> str:
    """The webhook body as text."""
    return json.dumps(to_payload(digest), ensure_ascii=False, indent=2) + "\n"
