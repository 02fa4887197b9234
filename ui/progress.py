"""Progress: weeks read, the streak, the eight families at a glance and over time, and the
reading history, searchable."""
from __future__ import annotations

import streamlit as st

from pipeline.core import weeks
from storage import reading
from storage.families import families_for
from ui import common, progress_view

HISTORY_SHOWN = 50  # history entries listed at once; the search narrows the rest

config = common.settings()
week = weeks.current_week(config.timezone)
st.title("Progress")
picks = reading.all_picks(config.db_path)
history = reading.read_history(config.db_path)
read_weeks = reading.read_weeks(config.db_path)

cols = st.columns(4)
cols[0].metric("Weeks read", len(read_weeks))
cols[1].metric("Streak", f"{weeks.streak(read_weeks, week)} wk")
cols[2].metric("Longest streak", f"{weeks.longest_streak(read_weeks)} wk")
cols[3].metric("Weeks skipped", sum(row["status"] == "skipped" for row in picks))

if not history:
    st.info("Nothing read yet. This week's paper is waiting on the first page.")
    st.stop()

families = families_for(config.db_path, [row["arxiv_id"] for row in history])
labels_of = {row["arxiv_id"]: tuple(families.get(row["arxiv_id"], {}).get("labels", ()))
             for row in history}
labelled = [(row["week"] or "", labels_of[row["arxiv_id"]]) for row in history]

st.subheader("The eight families")
coverage = progress_view.coverage(labelled)
st.altair_chart(progress_view.coverage_chart(coverage), width="stretch")
st.markdown(progress_view.next_family_line(coverage))
if not families:
    st.caption("Families are not classified yet: the chips fill in after the families stage.")

st.subheader("Week by week")
st.altair_chart(progress_view.weekly_chart(labelled, week), width="stretch")

st.subheader("Reading history")
query = st.text_input("Search your reading history", key="history_query",
                      placeholder="a word from the title, an author, your notes, a family, a week")
found = [row for row in history if progress_view.matches(row, labels_of[row["arxiv_id"]], query)]
st.caption(f"{len(found)} of {len(history)} papers read" + (" match" if query.strip() else "")
           + (f" · showing the newest {HISTORY_SHOWN}" if len(found) > HISTORY_SHOWN else ""))
for index, row in enumerate(found[:HISTORY_SHOWN]):
    stars = "★" * (row["rating"] or 0)
    # An expander's label is Markdown too (images included), so the title is escaped.
    label = f"{weeks.week_label(row['week'] or '')} · {common.md_escape(row['title'][:90])}"
    with st.expander(f"{label} {stars}", expanded=index == 0):
        st.markdown(common.paper_line(row, labels_of[row["arxiv_id"]] if families else None))
        if row.get("read_on"):
            st.caption(f"Read on {common.md_escape(row['read_on'])}")
        st.markdown(row["notes"] or "_No notes._")  # the reader's own Markdown
