"""The Streamlit pages of the reading app (``app.py`` routes between them)."""
