"""Digest: this week's digest as it goes out (the HTML mail, in a frame of its own where
nothing can run), to download as HTML or Markdown, and to send now through the channels set
up (e-mail, webhook): once a week to each recipient unless the reader sends it again on
purpose. The demo is never sent. The pieces are in ``ui/digest_view.py``."""
from __future__ import annotations

import streamlit as st

from pipeline.stages.digest_format import to_html, to_markdown
from ui import common, digest_view

config = common.settings()
st.title("Digest")
digest = digest_view.digest_of(config)
st.caption(f"Week {common.md_escape(digest.week)}: what `octet digest` writes and "
           "`octet digest --send` mails and posts.")
html = to_html(digest)
with st.container(horizontal=True):
    st.download_button("Download HTML", html, file_name=f"octet-digest-{digest.week}.html",
                       mime="text/html", icon=":material/download:", key="digest_html")
    st.download_button("Download Markdown", to_markdown(digest),
                       file_name=f"octet-digest-{digest.week}.md", mime="text/markdown",
                       icon=":material/download:", key="digest_markdown")
digest_view.send_controls(config, digest)
st.iframe(digest_view.framed(html), height=digest_view.FRAME_HEIGHT,
          alt=f"The {digest.week} digest")
