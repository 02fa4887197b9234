"""The Progress page's pieces that are plain functions of the reading history: the weekly
chart (stacked bars, one colour per family, horizontal week labels, readable at 1 week and
at 100), the eight-family coverage strip and the family to read next, and the history
search. Colours are drawn by the charts, not by coloured Markdown, which the browser test
takes for paper text that formed structure."""
from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd

from pipeline.core import weeks
from pipeline.core.families import CODES, FAMILY_COLOURS
from pipeline.stages.reading import neglect_order

NO_FAMILY = "no family"
NO_FAMILY_COLOUR = "#9CA3AF"
"""Grey for papers read that belong to no family (or are not classified yet)."""
MIN_WEEKS = 12
"""The chart spans at least this many weeks, so one week read is one bar among empty
weeks rather than a full-width block."""
MAX_WEEKS = 156
"""The chart shows at most the last three years of weeks."""
def week_span(read_weeks: list[str], this_week: str) -> list[str]:
    """Every ISO week from the first week read (or ``MIN_WEEKS`` back) to this week, at
    most the last ``MAX_WEEKS``; weeks with nothing read are kept, as gaps."""
    last = weeks.week_monday(max([this_week, *read_weeks]))
    earliest = last - timedelta(weeks=MIN_WEEKS - 1)
    first = min([earliest, *(weeks.week_monday(week) for week in read_weeks)])
    first = max(first, last - timedelta(weeks=MAX_WEEKS - 1))
    count = (last - first).days // 7 + 1
    return [weeks.week_of(first + timedelta(weeks=step)) for step in range(count)]


def weekly_counts(labelled: list[tuple[str, tuple[str, ...]]]) -> pd.DataFrame:
    """Long form ``week, family, papers``: a paper read counts once for each of its
    families, or once as ``no family``."""
    rows = [(week, label) for week, labels in labelled if week
            for label in ([code for code in labels if code in CODES] or [NO_FAMILY])]
    frame = pd.DataFrame(rows, columns=["week", "family"])
    return frame.groupby(["week", "family"]).size().reset_index(name="papers")


def weekly_chart(labelled: list[tuple[str, tuple[str, ...]]], this_week: str) -> alt.Chart:
    """Stacked bars of the families read per week, in the families' own colours."""
    span = week_span([week for week, _ in labelled if week], this_week)
    counts = weekly_counts(labelled)
    counts = counts[counts["week"].isin(span)]
    families = [*CODES, NO_FAMILY]
    colours = [*(FAMILY_COLOURS[code] for code in CODES), NO_FAMILY_COLOUR]
    return alt.Chart(counts).mark_bar().encode(
        x=alt.X("week:O", scale=alt.Scale(domain=span), title=None,
                axis=alt.Axis(labelAngle=0, labelOverlap="greedy", labelPadding=6)),
        y=alt.Y("sum(papers):Q", title="papers read", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("family:N", scale=alt.Scale(domain=families, range=colours),
                        legend=alt.Legend(orient="bottom", title=None, direction="horizontal")),
        order=alt.Order("family_order:Q"),
        tooltip=["week:N", "family:N", "papers:Q"],
    ).transform_calculate(
        family_order=f"indexof({families!r}, datum.family)",
    ).properties(height=240,  # room on the right for the last week's centred label
                 padding={"left": 5, "top": 5, "bottom": 5, "right": 32})


def coverage(labelled: list[tuple[str, tuple[str, ...]]]) -> list[dict]:
    """Per family, in the seed order: ``code``, ``papers`` read, ``last`` week read (or
    None), and ``next`` (True for the family neglected longest: the one to read next)."""
    neglected = neglect_order(labelled)
    result = []
    for code in CODES:
        read = [week for week, labels in labelled if code in labels]
        result.append({"code": code, "papers": len(read), "last": max(read, default=None),
                       "next": code == neglected[0]})
    return result


def coverage_chart(families: list[dict]) -> alt.LayerChart:
    """The eight families as a strip of tiles in their own colours (faint when never read),
    each with its code and the papers read; the one to read next is outlined."""
    rows = [{"family": family["code"], "label": f"{family['code']} {family['papers']}",
             "read": 1.0 if family["papers"] else 0.25, "ink": _ink(FAMILY_COLOURS[family["code"]])
             if family["papers"] else "#6B7280", "next": 3 if family["next"] else 0}
            for family in families]
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("family:N", sort=list(CODES), axis=None),
        tooltip=["label:N"])
    tiles = base.mark_rect(cornerRadius=6, stroke="#111827").encode(
        color=alt.Color("family:N", legend=None, scale=alt.Scale(
            domain=list(CODES), range=[FAMILY_COLOURS[code] for code in CODES])),
        opacity=alt.Opacity("read:Q", scale=None), strokeWidth=alt.StrokeWidth("next:Q", scale=None))
    labels = base.mark_text(fontWeight="bold", fontSize=13).encode(
        text="label:N", color=alt.Color("ink:N", scale=None))
    return (tiles + labels).properties(height=44)


def next_family_line(families: list[dict]) -> str:
    """``**Next:** LCM — never read.``: the family the week's pick leans to."""
    upcoming = next(family for family in families if family["next"])
    when = ("never read" if upcoming["last"] is None
            else f"last read in {weeks.week_label(upcoming['last'])}")
    return f"**Next:** {upcoming['code']} — {when}."


def _ink(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (by relative luminance)."""
    red, green, blue = (int(colour[index:index + 2], 16) / 255 for index in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#111827" if luminance > 0.5 else "#FFFFFF"


def matches(row: dict, labels: tuple[str, ...], query: str) -> bool:
    """Whether a history row holds every word of ``query`` (case-insensitive) in its
    title, authors, notes, id, week, read date or families."""
    words = query.lower().split()
    if not words:
        return True
    haystack = " ".join(str(part) for part in (
        row.get("title"), " ".join(row.get("authors") or ()), row.get("notes"),
        row.get("arxiv_id"), row.get("week"), row.get("read_on"), " ".join(labels)) if part)
    haystack = haystack.lower()
    return all(word in haystack for word in words)
