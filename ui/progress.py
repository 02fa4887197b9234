"""Progress: weeks read, the streak, the eight families over time, and the notes."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pipeline.core import weeks
from pipeline.core.families import CODES as FAMILY_CODES
from pipeline.stages.reading import neglect_order
from storage import reading
from storage.families import families_for
from ui import common

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
labelled = [(row["week"] or "", tuple(families.get(row["arxiv_id"], {}).get("labels", ())))
            for row in history]

st.subheader("The eight families over time")
if families:
    counts = pd.DataFrame(0, index=sorted({w for w, _ in labelled}),
                          columns=list(FAMILY_CODES))
    for read_week, labels in labelled:
        for label in labels:
            if label in counts.columns:
                counts.loc[read_week, label] += 1
    st.bar_chart(counts, x_label="week", y_label="papers read", stack=True)
    neglected = neglect_order(labelled)
    last = {code: max((w for w, labels in labelled if code in labels), default=None)
            for code in FAMILY_CODES}
    st.markdown("**Neglected longest:** " + ", ".join(
        f"{code} ({'never read' if last[code] is None else 'last ' + last[code]})"
        for code in neglected[:4]))
else:
    st.caption("Families are not classified yet, so the chart waits for the families stage.")

st.subheader("Reading history")
for index, row in enumerate(history):
    stars = "★" * (row["rating"] or 0)
    # An expander's label is Markdown too (images included), so the title is escaped.
    with st.expander(f"{row['week']} · {common.md_escape(row['title'][:90])} {stars}",
                     expanded=index == 0):
        st.markdown(common.paper_line(row, families.get(row["arxiv_id"], {}).get("labels")
                                      if families else None))
        st.caption(f"Read on {common.md_escape(row['read_on'])}")
        st.markdown(row["notes"] or "_No notes._")  # the reader's own Markdown
