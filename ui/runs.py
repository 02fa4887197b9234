"""Runs: what each `octet run` saw and did, so a silent day is never silent."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from storage.runs import recent_runs, run_in_progress
from ui import common

config = common.settings()
st.title("Runs")
runs = recent_runs(config.db_path, limit=60)
if not runs:
    st.info("No runs yet. `octet run` fetches the day's listing; `octet schedule install` "
            "runs it every day.")
    st.stop()

latest = runs[0]
errors = latest.get("errors") or []
if latest.get("status") == "running" and run_in_progress(config.home):
    st.info(f"A run is in progress (started {latest['started_at'][:16]} UTC).")
elif latest.get("status") in ("running", "interrupted"):
    st.warning(f"The last run ({latest['started_at'][:16]} UTC) was stopped before it finished; "
               "the next `octet run` picks up where it stopped.")
elif errors or (latest.get("exit_code") or 0) != 0:
    st.error(f"The last run ({latest['started_at'][:16]} UTC) reported {len(errors)} error(s).")
elif not latest.get("announced"):
    st.warning("The last run found nothing announced (a weekend or holiday, or a feed problem).")
else:
    st.success(f"The last run stored {latest.get('new', 0)} new papers.")

table = pd.DataFrame([{
    "started (UTC)": (run.get("started_at") or "")[:16].replace("T", " "),
    "command": run.get("command"), "status": run.get("status"),
    "announced": run.get("announced", 0), "fetched": run.get("fetched", 0),
    "new": run.get("new", 0), "updated": run.get("updated", 0),
    "skipped": run.get("skipped", 0), "errors": len(run.get("errors") or []),
    "seconds": run.get("duration_seconds")} for run in runs])
st.dataframe(table, hide_index=True, width="stretch")

for run in runs[:10]:
    if run.get("errors") or run.get("skipped_reasons"):
        started = (run.get("started_at") or "")[:16]
        with st.expander(f"Run {run['run_id']} · {started} — details"):
            for error in run.get("errors") or []:
                st.markdown(f"- {common.md_escape(str(error))}")
            for reason, count in (run.get("skipped_reasons") or {}).items():
                st.markdown(f"- skipped {count}: {common.md_escape(str(reason))}")
