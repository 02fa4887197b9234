"""Octet's reading app: ``octet app`` (or ``streamlit run app.py``).

A router only: each page lives in ``ui/``; any URL with ``?paper=<arXiv id>`` (every title
links there) shows that paper's page, ``ui/paper.py``. The app holds no database connection
between reruns (every storage call opens and closes its own) and never loads a generative
model.
"""
from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run app.py` puts this folder on the path only when run from it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st  # noqa: E402

from pipeline.stages.library import demo_reason  # noqa: E402
from storage import reading  # noqa: E402
from ui import common, paper  # noqa: E402

st.set_page_config(page_title="Octet", page_icon="📖", layout="wide")

PAGES = [
    st.Page("ui/this_week.py", title="This week", icon=":material/auto_stories:",
            url_path="this-week", default=True),
    st.Page("ui/inbox.py", title="Inbox", icon=":material/inbox:", url_path="inbox"),
    st.Page("ui/reading_queue.py", title="Queue", icon=":material/format_list_numbered:",
            url_path="queue"),
    st.Page("ui/browse.py", title="Browse", icon=":material/search:", url_path="browse"),
    st.Page("ui/progress.py", title="Progress", icon=":material/insights:", url_path="progress"),
    st.Page("ui/digest.py", title="Digest", icon=":material/mail:", url_path="digest"),
    st.Page("ui/runs.py", title="Runs", icon=":material/history:", url_path="runs"),
]

config = common.settings()
common.warm_encoder(config.db_path)  # in the background: the first semantic search is quick
router = st.navigation(PAGES)
with st.sidebar:
    if common.is_demo(config):
        st.warning("**DEMO DATA** — not your library. Run `octet run` to fetch your own.")
    st.caption(f"{reading.paper_count(config.db_path):,} papers · {common.code(config.db_path.name)}")
if common.is_demo(config):  # on the page too: a phone's collapsed sidebar hides the one above
    st.markdown(f":orange-badge[DEMO DATA] not your library — "
                f"{common.md_escape(demo_reason(config))}. The first `octet run` that stores "
                "papers switches the app and the commands to your own.")
common.show_flash()
if "paper" in st.query_params:
    paper.show(config, st.query_params["paper"])
else:
    router.run()
common.warm_search(config.db_path)  # after the page is drawn: the first search is quick
