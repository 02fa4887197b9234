"""The app's database (one for the app and the commands, the demo said out loud), the Runs
page in demo mode, and Progress (family colours, the weekly chart at 1 and at 100 weeks,
coverage, the searchable history) with AppTest on real DuckDB files."""
from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from pipeline.core import weeks
from pipeline.core.families import CODES, FAMILY_COLOURS
from storage import reading
from storage.db import connect
from storage.runs import finish_run, start_run
from tests.helpers import open_app, store_families, store_real_papers



def _text(app: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "title", "caption", "info", "success", "warning",
                                  "error", "subheader") for e in getattr(app, kind)]
    return "\n".join(str(part) for part in parts)


def _record_run(db_path, command: str, report: dict) -> int:
    run_id = start_run(db_path, command, ("cs.CL",))
    finish_run(db_path, run_id, report)
    return run_id


def _unreachable_run(settings) -> None:
    """What `octet run --or-demo` leaves in the reader's own database when arXiv is down."""
    _record_run(settings.db_path, "run", {"status": "unreachable", "exit_code": 3,
                                          "errors": ["rss: connection refused"]})


def _charts(app: AppTest) -> list:
    """Progress's two charts: the coverage strip and the weekly bars."""
    charts = [node for node in app.main if getattr(node, "type", "") == "vega_lite_chart"]
    assert len(charts) == 2
    return charts


def _chart_specs(app: AppTest) -> tuple[dict, dict]:
    return tuple(json.loads(chart.proto.spec) for chart in _charts(app))


def _tiles(app: AppTest) -> dict[str, dict]:
    """The coverage strip's rows by family: label, opacity (read or not), outline (next)."""
    data = _charts(app)[0].proto.datasets[0].data.data  # Arrow IPC, as the browser gets it
    rows = pa.ipc.open_stream(data).read_all().to_pylist()
    return {row["family"]: row for row in rows}


# ---- one database ---------------------------------------------------------------

def test_the_demo_is_shown_and_said_until_a_run_stores_the_readers_papers(settings):
    store_real_papers(settings.demo_db_path, 5)
    _unreachable_run(settings)
    app = open_app()
    assert any("DEMO DATA" in warning.value for warning in app.sidebar.warning)
    banner = [m.value for m in app.main.markdown if "DEMO DATA" in m.value]
    assert banner and "arXiv was unreachable at" in banner[0]  # on the page: phones see it
    assert "demo.duckdb" in " ".join(c.value for c in app.sidebar.caption)
    with connect(settings.demo_db_path, read_only=True) as con:  # the pick went to the demo
        assert con.execute("SELECT count(*) FROM weekly_picks").fetchone()[0] == 1
    with connect(settings.db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM weekly_picks").fetchone()[0] == 0

    store_real_papers(settings.db_path, 3)  # the first run that stores papers
    app = open_app()
    assert not app.sidebar.warning and "DEMO DATA" not in _text(app)
    assert "octet.duckdb" in " ".join(c.value for c in app.sidebar.caption)


def test_a_database_named_in_the_settings_is_used_even_when_empty(settings, monkeypatch, tmp_path):
    store_real_papers(settings.demo_db_path, 5)
    monkeypatch.setenv("OCTET_DB", str(tmp_path / "mine.duckdb"))
    app = open_app()
    assert "DEMO DATA" not in _text(app) and not app.sidebar.warning
    assert "mine.duckdb" in " ".join(c.value for c in app.sidebar.caption)


def test_runs_page_in_demo_mode_shows_the_demo_runs_and_why(settings):
    store_real_papers(settings.demo_db_path, 5)
    _record_run(settings.demo_db_path, "demo", {"status": "done", "exit_code": 0,
                                                "announced": 0, "fetched": 5, "new": 5})
    _unreachable_run(settings)
    app = open_app("ui/runs.py")
    text = _text(app)
    assert "runs of the **demo database**" in text and "arXiv was unreachable at" in text
    assert "demo sample was loaded" in text
    assert "nothing announced" not in text  # a demo load is no empty weekday
    assert list(app.dataframe[0].value["command"]) == ["demo"]


def test_runs_page_says_why_a_run_found_nothing_and_never_shows_none(settings):
    store_real_papers(settings.db_path, 3)
    _record_run(settings.db_path, "fetch", {"status": "done", "exit_code": 0, "announced": 0,
                                            "fetched": 4, "new": 4})
    assert "stored 4 new papers" in _text(open_app("ui/runs.py"))
    _record_run(settings.db_path, "run", {"status": "done", "exit_code": 0, "announced": 0,
                                          "note": "a weekend feed: arXiv announces Sunday to "
                                          "Thursday"})
    app = open_app("ui/runs.py")
    assert "found nothing announced: a weekend feed" in _text(app)
    table = app.dataframe[0].value
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()


# ---- progress ---------------------------------------------------------------------

def _read(settings, papers, week: str, labels: list[str], note: str | None = None,
          rating: int | None = None) -> None:
    for paper in papers:
        reading.mark_read(settings.db_path, paper.arxiv_id, week, rating, note,
                          weeks.week_monday(week))
        if labels:
            store_families(settings.db_path, {paper.arxiv_id: labels})


def test_progress_at_one_week_uses_the_family_colours_and_a_readable_span(settings):
    papers = store_real_papers(settings.db_path, 3)
    this_week = weeks.current_week()
    _read(settings, papers[:1], this_week, ["LLM", "MoE"], "*mine*", 5)
    app = open_app("ui/progress.py")
    coverage, spec = _chart_specs(app)
    for chart in (spec, coverage["layer"][0]):  # one colour per family, in both charts
        colour = chart["encoding"]["color"]["scale"]
        assert colour["domain"][:8] == list(CODES)
        assert colour["range"][:8] == [FAMILY_COLOURS[code] for code in CODES]
    span = spec["encoding"]["x"]["scale"]["domain"]
    assert len(span) == 12 and span[-1] == this_week  # one bar among empty weeks
    assert spec["encoding"]["x"]["axis"]["labelAngle"] == 0
    tiles = _tiles(app)
    assert (tiles["LLM"]["label"], tiles["LLM"]["read"]) == ("LLM 1", 1.0)
    assert (tiles["LCM"]["label"], tiles["LCM"]["read"]) == ("LCM 0", 0.25)  # never read: faint
    assert [code for code, row in tiles.items() if row["next"]] == ["LCM"]
    assert "**Next:** LCM — never read." in [m.value for m in app.markdown]


def test_progress_at_a_hundred_weeks_keeps_every_week_and_counts_each_family(settings):
    papers = store_real_papers(settings.db_path, 100)
    this_week = weeks.current_week()
    monday = weeks.week_monday(this_week)
    read = [weeks.week_of(monday - timedelta(weeks=step)) for step in range(100)]
    for index, (paper, week) in enumerate(zip(papers, read)):
        _read(settings, [paper], week, [CODES[index % len(CODES)]])
    app = open_app("ui/progress.py")
    coverage, spec = _chart_specs(app)
    span = spec["encoding"]["x"]["scale"]["domain"]
    assert span == sorted(read) and len(set(span)) == 100
    assert spec["encoding"]["x"]["axis"]["labelOverlap"] == "greedy"  # labels thin out
    tiles = _tiles(app)
    for position, code in enumerate(CODES):  # 100 papers, round robin over eight families
        assert tiles[code]["label"] == f"{code} {len(range(position, 100, len(CODES)))}"
    # Paper i was read i weeks ago, in family i mod 8: SAM's last read (7 weeks ago) is oldest.
    assert [code for code, row in tiles.items() if row["next"]] == ["SAM"]
    line = f"**Next:** SAM — last read in {read[7].replace('-', chr(0x2011))}."
    assert line in [m.value for m in app.markdown]


def test_progress_history_is_searchable(settings):
    papers = store_real_papers(settings.db_path, 3)
    this_week = weeks.current_week()
    last_week = weeks.previous_week(this_week)
    _read(settings, papers[:1], this_week, ["SAM"], "masks everywhere", 4)
    _read(settings, papers[1:2], last_week, ["LLM"], "long context trick", 3)
    _read(settings, papers[2:3], weeks.previous_week(last_week), [], None)
    app = open_app("ui/progress.py")
    assert "3 of 3 papers read" in _text(app) and len(app.expander) == 3
    app.text_input(key="history_query").input("CONTEXT trick").run()
    assert "1 of 3 papers read match" in _text(app)
    assert _labels(app) == [papers[1].title[:20]]
    author = papers[2].authors[0].split()[-1]
    app.text_input(key="history_query").input(author.upper()).run()
    assert papers[2].title[:20] in _labels(app)
    app.text_input(key="history_query").input("sam").run()  # a family code
    assert _labels(app)[0] == papers[0].title[:20]


def _labels(app: AppTest) -> list[str]:
    """The history entries' titles (first 20 characters, Markdown escapes removed)."""
    return [e.label.replace("\\", "").split(" · ", 1)[1][:20] for e in app.expander]


@pytest.mark.parametrize("page", ["ui/progress.py", "ui/runs.py"])
def test_my_pages_render_on_the_demo_without_raw_none(settings, page):
    papers = store_real_papers(settings.demo_db_path, 3)
    reading.mark_read(settings.demo_db_path, papers[0].arxiv_id, weeks.current_week(), None,
                      None, None)
    _record_run(settings.demo_db_path, "demo", {"status": "done", "exit_code": 0, "new": 3})
    app = open_app(page)
    assert "None" not in _text(app).replace("No notes", "")
