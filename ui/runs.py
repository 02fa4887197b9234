"""Runs: what each `octet run` saw and did, so a silent day is never silent. It lists the
runs of the database the app shows; on the demo it says why the demo is shown. It also says
when the last weekly digest went out and to whom, as `octet status` does."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pipeline.core import weeks
from pipeline.stages import last_digest
from pipeline.stages.library import demo_reason, home_database
from storage.runs import recent_runs, run_in_progress
from ui import common

config = common.settings()
st.title("Runs")
if common.is_demo(config):
    st.info(f"These are the runs of the **demo database**: "
            f"{common.md_escape(demo_reason(config))}. Your own database is "
            f"{common.code(home_database(config))}; the first `octet run` that stores papers "
            "there switches the app and the commands to it.", icon=":material/science:")


def show_last_digest() -> None:
    """The last digest line (time in the reader's zone; a webhook shown as its host)."""
    sent = last_digest.last_digest(config.db_path)
    line = last_digest.status_line(sent, weeks.reader_zone(config.timezone))
    st.markdown(common.md_escape(line))
    if sent is None:
        st.caption("`octet digest --send` sends this week's; `octet schedule install cron "
                   "--digest \"Mon 08:00\"` sends it every week.")


runs = recent_runs(config.db_path, limit=60)
if not runs:
    st.info("No runs yet. `octet run` fetches the day's listing; `octet schedule install` "
            "runs it every day.")
    show_last_digest()
    st.stop()


def _utc_minute(text) -> str:
    """A stored UTC time to the minute, or "unknown"."""
    return f"{str(text)[:16].replace('T', ' ')} UTC" if text else "an unknown time"


def verdict(latest: dict, in_progress: bool) -> tuple[str, str]:
    """``(kind, sentence)`` on the newest run: in progress, stopped, failed, or what it
    stored; "nothing announced" only for a daily run, with the run's own note on why."""
    started, status = _utc_minute(latest.get("started_at")), latest.get("status")
    errors = latest.get("errors") or []
    if status == "running" and in_progress:
        return "info", f"A run is in progress (started {started})."
    if status in ("running", "interrupted"):
        return "warning", (f"The last run ({started}) was stopped before it finished; the next "
                           "`octet run` picks up where it stopped.")
    if status == "unreachable":
        return "error", f"The last run ({started}) could not reach arXiv; nothing was changed."
    if errors or (latest.get("exit_code") or 0) != 0:
        return "error", f"The last run ({started}) reported {len(errors)} error(s)."
    new = latest.get("new") or 0
    if latest.get("command") == "demo":
        return "success", f"The demo sample was loaded ({started}): {new} new papers."
    if latest.get("command") == "run" and not latest.get("announced"):
        why = latest.get("note") or "a weekend or holiday, or a feed problem"
        return "warning", f"The last run ({started}) found nothing announced: {common.md_escape(why)}."
    return "success", f"The last {latest.get('command') or 'run'} ({started}) stored {new} new papers."


kind, sentence = verdict(runs[0], run_in_progress(config.home))
getattr(st, kind)(sentence)
show_last_digest()

table = pd.DataFrame([{
    "started (UTC)": (run.get("started_at") or "")[:16].replace("T", " "),
    "command": run.get("command") or "", "status": run.get("status") or "",
    "announced": run.get("announced") or 0, "fetched": run.get("fetched") or 0,
    "new": run.get("new") or 0, "updated": run.get("updated") or 0,
    "skipped": run.get("skipped") or 0, "errors": len(run.get("errors") or []),
    "seconds": round(run.get("duration_seconds") or 0.0, 1)} for run in runs])
st.dataframe(table, hide_index=True, width="stretch")

for run in runs[:10]:
    if run.get("errors") or run.get("skipped_reasons"):
        with st.expander(f"Run {run['run_id']} · {_utc_minute(run.get('started_at'))} — details"):
            for error in run.get("errors") or []:
                st.markdown(f"- {common.md_escape(str(error))}")
            for reason, count in (run.get("skipped_reasons") or {}).items():
                st.markdown(f"- skipped {count}: {common.md_escape(str(reason))}")
