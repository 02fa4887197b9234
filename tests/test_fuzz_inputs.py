"""Fuzzing the other parsers of outside input: model replies, Obsidian notes on import, and
arXiv's metadata snapshot as JSON lines. No input crashes; bad input is reported and skipped.

(RSS, Atom and Octet's own JSONL format are fuzzed in test_fuzz_sources.py.)
"""
from __future__ import annotations

import itertools
import json
import lzma
import unicodedata
from unittest import mock

import pytest

from tests.helpers import set_reading
import yaml
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from pipeline.stages import export
from pipeline.stages import obsidian as note_files
from pipeline.cli import main
from pipeline.core.paper import Paper
from pipeline.stages.sources import read_jsonl
from pipeline.stages.summaries.replies import parse_replies
from pipeline.stages.summaries.summary import FIELDS, MAX_FIELD_CHARACTERS, Summary, parse_summary
from storage import export as store
from storage import reading
from storage.papers import existing_versions, upsert_papers

FAST = hypothesis_settings(max_examples=150, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# One real DuckDB per test, shared by the examples (each example starts from what is stored).
ON_DISK = hypothesis_settings(max_examples=25, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large,
                                                     HealthCheck.function_scoped_fixture])

ANY_CHAR = st.characters(exclude_categories=[])  # control characters and lone surrogates too
NOTHING = ("", "n/a", "none", "null", "unknown", "-", '""')  # what the parser reads as "no answer"


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for position, cut, insert in edits:
        position %= max(len(data), 1)
        data = data[:position] + insert + data[position + cut:]
    return data


byte_edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 20),
                                st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xef\xbb\xbf",
                                                 b"\r", b"\n---\n", b"\xed\xa0\x80"])
                                | st.binary(max_size=8)), max_size=4)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                           | st.text(ANY_CHAR, max_size=30),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=10), children, max_size=4),
                           max_leaves=12)


# ---- model output ------------------------------------------------------------------------

FALLBACK = Summary(tldr="Copied tldr.", problem="Copied problem.", method="",
                   results="Copied results.", why_it_matters="Copied why.")
KEYS = st.sampled_from(["tldr", "TL;DR", "tl_dr", "summary", "problem", "Problem", "method",
                        "approach", "results", "result", "findings", "why_it_matters",
                        "Why it matters", "significance", "impact", "note", "tldr "])


def normalized(value: str) -> str:
    """The parser's documented normalization of one string field: control characters (and
    lone surrogates) become spaces, whitespace runs one space, "n/a" and the like nothing,
    at most MAX_FIELD_CHARACTERS."""
    text = "".join(" " if unicodedata.category(char) in ("Cc", "Cs") else char
                   for char in value)
    text = " ".join(text.split())
    return "" if text.lower() in NOTHING else text[:MAX_FIELD_CHARACTERS]


def assert_valid_summary(summary: Summary, text: str, fallback: Summary | None) -> None:
    """parse_summary's contract: a Summary whose fields are plain one-line strings of at most
    MAX_FIELD_CHARACTERS (or copied whole from the fallback, and then listed)."""
    assert isinstance(summary, Summary)
    assert (summary.arxiv_id, summary.version, summary.backend, summary.model,
            summary.prompt_version, summary.created_at) == ("", 0, "", "", "", None)
    borrowed = summary.fallback_fields
    assert list(borrowed) == [name for name in FIELDS if name in borrowed]
    alone = parse_summary(text).fields() if fallback is not None else summary.fields()
    for name, value in summary.fields().items():
        assert isinstance(value, str)
        if name in borrowed:
            assert fallback is not None and value == getattr(fallback, name) and value
            assert alone[name] == ""
            continue
        assert value == alone[name]
        assert len(value) <= MAX_FIELD_CHARACTERS
        assert not any(unicodedata.category(char) in ("Cc", "Cs") for char in value), value
        assert value == value.lstrip() and "  " not in value
        assert value.lower() not in NOTHING or value == ""
        if not value and fallback is not None:
            assert not getattr(fallback, name)  # empty only when there was nothing to borrow
    if fallback is None:
        assert borrowed == ()


FENCES = ["{}", "```json\n{}\n```", "Sure! Here is the summary:\n```\n{}\n```\nHope it helps {{.",
          "<think>{{ not json</think>\n{}", '{}\n\n{{"tldr": "Second object."}}']


def fenced(body: str, style: int) -> str:
    """The reply wrapped the way models wrap it (style 4 adds a second object after it)."""
    return FENCES[style].format(body)


json_reply = st.builds(
    lambda fields, indent, ascii_only: json.dumps(fields, indent=indent, ensure_ascii=ascii_only),
    st.dictionaries(KEYS | st.text(max_size=12), json_values, max_size=8),
    st.sampled_from([None, 2]), st.booleans())
line_reply = st.lists(st.builds(
    lambda label, separator, value: f"{label}{separator}{value}",
    st.sampled_from(["TL;DR", "**Problem**", "- Method", "Results", "Why it matters", "note",
                     "1. Findings", "", "TL;DR TL;DR TL;DR TL;DR TL;DR TL;DR"]),
    st.sampled_from([": ", "=", ":", " - ", ": \"", "**: "]),
    st.text(ANY_CHAR, max_size=60)), max_size=7).map("\n".join)
nested = st.builds(lambda head, depth, tail: head + "[" * depth + tail + "]" * depth,
                   st.sampled_from(['{"tldr": ', '{"tldr": {"a": ', "", "```json\n{\"method\":"]),
                   st.integers(0, 3000), st.sampled_from(['"x"', "", '"x"]}', "{"]))
replies = st.one_of(
    st.text(ANY_CHAR, max_size=400),
    json_reply,
    st.builds(fenced, json_reply, st.integers(0, 4)),
    st.builds(lambda reply, cut: reply[:cut], json_reply, st.integers(0, 200)),  # truncated
    line_reply,
    nested,
    st.builds(lambda piece, times: piece * times, st.text(ANY_CHAR, min_size=1, max_size=12),
              st.integers(0, 3000)),  # huge
    st.builds(lambda reply, noise: reply.replace('"', noise), json_reply,
              st.sampled_from(["\x00", "'", "\u201c", ""])),
)


@FAST
@given(replies, st.booleans())
def test_any_model_reply_gives_a_valid_summary_never_raises(text, with_fallback):
    fallback = FALLBACK if with_fallback else None
    assert_valid_summary(parse_summary(text, fallback), text, fallback)


field_text = st.text(ANY_CHAR, max_size=1500)


@FAST
@given(st.fixed_dictionaries({name: field_text for name in FIELDS}), st.sampled_from([None, 2]),
       st.booleans(), st.integers(0, 3))
def test_a_well_formed_reply_parses_back_to_its_fields(fields, indent, ascii_only, style):
    text = fenced(json.dumps(fields, indent=indent, ensure_ascii=ascii_only), style)
    expected = {name: normalized(value) for name, value in fields.items()}
    assert parse_summary(text).fields() == expected


line_value = st.from_regex(r"[A-Za-z][A-Za-z0-9 .;()%+*/'-]{0,80}", fullmatch=True)


@FAST
@given(st.fixed_dictionaries({}, optional={name: line_value for name in FIELDS}),
       st.sampled_from(["{}: {}", "**{}**: {}", "- {}: {}", "{} = {}"]))
def test_a_line_by_line_reply_parses_back_to_its_fields(fields, pattern):
    labels = {"tldr": "TL;DR", "problem": "Problem", "method": "Method", "results": "Results",
              "why_it_matters": "Why it matters"}
    text = "\n".join(pattern.format(labels[name], value) for name, value in fields.items())
    expected = {name: normalized(fields.get(name, "")) for name in FIELDS}
    assert parse_summary(text).fields() == expected


ASKED: list[list[str]] = []  # the papers each FakeExtractive.fields_for call was given


class FakeExtractive:
    """Stands in for the extractive backend: records which papers it was asked for."""

    def __init__(self, device: str = "auto"):
        self.device = device

    def fields_for(self, papers):
        ASKED.append([paper.arxiv_id for paper in papers])
        return [{name: f"{paper.arxiv_id} {name}." if name != "method" else ""
                 for name in FIELDS} for paper in papers]


@FAST
@given(st.lists(replies, max_size=5))
def test_parse_replies_pays_for_the_fallback_only_where_needed(texts):
    papers = [Paper(arxiv_id=f"2601.{n:05d}", version=1, title=f"T{n}") for n in range(len(texts))]
    ASKED.clear()
    with mock.patch("pipeline.stages.summaries.replies.ExtractiveSummarizer", FakeExtractive):
        parsed = parse_replies(texts, papers)
    assert len(parsed) == len(texts)
    needy = [paper.arxiv_id for paper, text in zip(papers, texts)
             if not all(parse_summary(text).fields().values())]
    assert ASKED == ([needy] if needy else [])
    for paper, text, summary in zip(papers, texts, parsed):
        fallback = None
        if paper.arxiv_id in needy:
            fallback = Summary(**{name: f"{paper.arxiv_id} {name}." if name != "method" else ""
                                  for name in FIELDS})
        assert_valid_summary(summary, text, fallback)


def test_regression_deeply_nested_field_is_flattened_not_a_recursion_error():
    # Was RecursionError from the recursive list flattening (from 400 levels on).
    text = '{"tldr": ' + "[" * 400 + '"x"' + "]" * 400 + "}"
    assert parse_summary(text).tldr == "x"
    # Was RecursionError from the JSON decoder (nesting deeper than it recurses).
    summary = parse_summary('{"tldr": "Kept.", "method": ' + "[" * 100_000, FALLBACK)
    assert_valid_summary(summary, '{"tldr": "Kept.", "method": ' + "[" * 100_000, FALLBACK)


def test_regression_c1_controls_and_lone_surrogates_are_removed():
    # Was kept verbatim: \x9b is CSI on 8-bit terminals; a lone surrogate (a JSON "\ud83d"
    # escape from a server) made save_summaries fail for the whole chunk.
    summary = parse_summary('{"tldr": "a\\u009bb \\ud83d c"}')
    assert summary.tldr == "a b c"
    summary.tldr.encode("utf-8")


def test_regression_all_empty_json_answer_falls_back_instead_of_reading_json_as_a_line():
    # The prompt asks for "" where the abstract says nothing; a reply with "" everywhere gave
    # tldr = '"problem": "", "method": "", ...}' (the JSON line read as "tldr: ...").
    text = json.dumps({name: "" for name in FIELDS})
    summary = parse_summary(text, FALLBACK)
    assert summary.tldr == "Copied tldr." and summary.fallback_fields == (
        "tldr", "problem", "results", "why_it_matters")


# ---- Obsidian notes on import ------------------------------------------------------------

GOOD = ("2601.00001", "2601.00002")
BAD = ("2601.00003", "2601.00004", "2601.00005")
STATES = reading.STATES


@pytest.fixture
def vault(settings, tmp_path):
    """Five stored papers with reading rows and notes, exported once to a vault."""
    papers = [Paper(arxiv_id=arxiv_id, version=1, title=f"Fuzz paper {arxiv_id}",
                    authors=("Ada Lovelace",), primary_category="cs.LG")
              for arxiv_id in GOOD + BAD]
    upsert_papers(settings.db_path, papers)
    set_reading(settings.db_path, [
        {"arxiv_id": paper.arxiv_id, "state": "queued", "rating": 2,
         "notes": f"Stored note of {paper.arxiv_id}."} for paper in papers])
    folder = tmp_path / "vault"
    export.export_obsidian(settings, folder)
    owned, _, _ = export.scan_papers(folder / note_files.PAPERS)
    assert set(owned) == set(GOOD + BAD)
    return folder, {arxiv_id: note.path for arxiv_id, note in owned.items()}


yaml_value = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(), st.floats(),
    st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(STATES + ("READ", " read ", "finished", "Queued\n")),
    st.sampled_from(["3", " 4 ", "\u00b3", "\u0663", "9" * 30, "1e3", "05", "2.0", "+1"]))
NASTY_YAML = ["- a\n- b\n", "just a scalar\n", "read_on: 2026-02-30\n",
              "rating: " + "9" * 5000 + "\n", "title: [unclosed\n", "? [a, b]\n: c\n",
              "\t- tab\n", "x: !!python/object/apply:os.system ['true']\n",
              "state: &a read\nrating: *a\n", "read_on: 2001-12-14t21:59:43.10+25:00\n",
              "rating: !!binary 'not base64!'\n", "<<: 5\n", "state: !!set {read: null}\n",
              "state: read\nstate: queued\n", "%YAML 9.9\n---\n", "...\n", "'\n", "null\n",
              "rating: 0x3\n", "rating: 0o5\n", "rating: 1_0\n", "rating: .inf\n", ""]


def frontmatter_text(arxiv_id: str):
    fields = st.fixed_dictionaries({}, optional={
        "arxiv_id": st.sampled_from([arxiv_id, f" {arxiv_id}", "2101.99999"]) | yaml_value,
        "state": yaml_value, "rating": yaml_value, "title": yaml_value, "read_on": yaml_value,
        "week": yaml_value})
    return st.one_of(
        fields.map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
        st.builds(lambda data, nasty: yaml.safe_dump(data, allow_unicode=True) + nasty,
                  fields, st.sampled_from(NASTY_YAML)),
        st.sampled_from(NASTY_YAML).map(lambda nasty: f"arxiv_id: '{arxiv_id}'\n{nasty}"),
        st.text(max_size=120))


def note_bytes(arxiv_id: str):
    def assemble(bom, opening, head, closing, before, heading, notes, crlf, edits):
        text = bom + opening + head + closing + before + heading + notes
        if crlf:
            text = text.replace("\n", "\r\n")
        return mutate(text.encode("utf-8"), edits)

    return st.builds(
        assemble, st.sampled_from(["", "\ufeff"]),
        st.sampled_from(["---\n", "---\n", "--- \n", "----\n", ""]), frontmatter_text(arxiv_id),
        st.sampled_from(["---\n", "---\n", "--- \n", "", "...\n"]), st.text(max_size=60),
        st.sampled_from(["\n## My notes\n", "\n## my notes  \n", "\n## My notes", "\n## Notes\n",
                         "", "\n## My notes\n## My notes\n"]),
        st.text(ANY_CHAR.filter(lambda char: unicodedata.category(char) != "Cs"), max_size=120),
        st.booleans(), st.one_of(st.just([]), byte_edits))


def file_values(path) -> tuple[str, dict, str | None]:
    """What a note says, read the way the import reads it: (its arxiv_id, frontmatter, notes)."""
    note = note_files.read_note(path)
    return str(note.frontmatter.get("arxiv_id") or ""), note.frontmatter, note.my_notes


def allowed_ratings(frontmatter: dict) -> set:
    value = frontmatter.get("rating")
    if value in (None, ""):
        return {None}
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) < 10:
        value = int(value.strip())  # any decimal digits, as int() reads them
    return {value} if isinstance(value, int) and not isinstance(value, bool) and \
        1 <= value <= 5 else set()


@ON_DISK
@given(good=st.tuples(st.sampled_from(("queued", "read", "skipped")), st.integers(1, 5),
                      st.text(max_size=80).filter(lambda text: "\r" not in text)),
       bad=st.tuples(*(note_bytes(arxiv_id) for arxiv_id in BAD)),
       stray=note_bytes("2101.99999"))
def test_bad_notes_are_reported_and_skipped_good_ones_imported(settings, vault, capsys,
                                                               good, bad, stray):
    folder, paths = vault
    state, rating, notes = good
    for arxiv_id in GOOD:
        paths[arxiv_id].write_text(
            note_files.render_frontmatter({"arxiv_id": arxiv_id, "state": state,
                                           "rating": rating}) +
            f"\n# Fuzz paper\n\n## My notes\n{notes}", encoding="utf-8")
    for arxiv_id, data in zip(BAD, bad):
        paths[arxiv_id].write_bytes(data)
    (folder / note_files.PAPERS / "stray.md").write_bytes(stray)
    before = store.reading_rows(settings.db_path, list(GOOD + BAD))
    capsys.readouterr()

    assert main(["import", "obsidian", "--vault", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    after = store.reading_rows(settings.db_path, list(GOOD + BAD))
    for arxiv_id in GOOD:  # good notes next to bad ones are imported
        row = after[arxiv_id]
        assert (row["state"], row["rating"]) == (state, rating)
        assert row["notes"] == (note_files.normalize_notes(notes) or None)
    for arxiv_id in BAD:
        old, new = before[arxiv_id], after[arxiv_id]
        claimed, frontmatter, section = file_values(paths[arxiv_id])
        if claimed != arxiv_id:  # not (or no longer) this paper's note: nothing changes
            assert new == old
            continue
        states = {str(frontmatter.get("state") or "").strip().lower()} & set(STATES)
        assert new["state"] in {old["state"]} | states
        assert new["rating"] in {old["rating"]} | allowed_ratings(frontmatter)
        imported = note_files.normalize_notes(section) if section is not None else None
        assert new["notes"] in {old["notes"], imported or None}
        if new["notes"] != old["notes"]:
            imported.encode("utf-8")
    for item in report["skipped"]:  # each bad note: one line with the file and the reason
        assert item["file"] and "\n" not in item["reason"] and "\r" not in item["reason"]
    for path in list(paths.values()) + [folder / note_files.PAPERS / "stray.md"]:
        note = note_files.read_note(path)
        if not note.frontmatter_ok:
            assert any(item["file"] == str(path) and "not valid YAML" in item["reason"]
                       for item in report["skipped"])


def test_regression_unbuildable_yaml_values_are_invalid_yaml_not_a_crash():
    # Each raised ValueError out of parse_frontmatter (and stopped the whole import, exit 1).
    for head in ["read_on: 2026-02-30", "rating: " + "9" * 5000,
                 "x: 2001-12-14t21:59:43.10+25:00", "title: a\udcffb"]:
        assert note_files.parse_frontmatter(f"---\n{head}\n---\n") == ({}, False)


def test_regression_bad_notes_do_not_stop_the_import(settings, vault, capsys):
    folder, paths = vault
    one, two, three = BAD
    # rating '³': str.isdigit() is True but int() refuses it (ValueError, exit 1).
    paths[one].write_bytes(f"---\narxiv_id: '{one}'\nrating: '\u00b3'\n---\n".encode())
    # My notes with a byte that is not UTF-8: UnicodeEncodeError in save_reading (exit 1).
    paths[two].write_bytes(f"---\narxiv_id: '{two}'\nstate: read\n---\n## My notes\n"
                           "bad \xff byte\n".encode("latin-1"))
    # A date YAML cannot build: ValueError from the YAML loader (exit 1).
    paths[three].write_bytes(f"---\narxiv_id: '{three}'\nread_on: 2026-02-30\n---\n".encode())
    (folder / note_files.PAPERS / "folder.md").mkdir()  # IsADirectoryError (exit 1)
    paths[GOOD[0]].write_text(note_files.render_frontmatter(
        {"arxiv_id": GOOD[0], "state": "read", "rating": 5}) + "## My notes\nNew.\n",
        encoding="utf-8")
    before = store.reading_rows(settings.db_path, list(BAD))
    assert main(["import", "obsidian", "--vault", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"skipped {paths[one]}: rating '\u00b3' is not a whole number" in out
    assert f"skipped {paths[two]}: its '## My notes' are not valid UTF-8" in out
    assert f"skipped {paths[three]}: its frontmatter is not valid YAML" in out
    after = store.reading_rows(settings.db_path, list(BAD) + [GOOD[0]])
    assert (after[GOOD[0]]["state"], after[GOOD[0]]["rating"], after[GOOD[0]]["notes"]) == (
        "read", 5, "New.")
    assert after[one] == before[one] and after[three] == before[three]
    assert after[two]["state"] == "read" and after[two]["notes"] == before[two]["notes"]
    export.export_obsidian(settings, folder)  # the unreadable notes stay as the reader wrote them
    assert paths[two].read_bytes().endswith(b"## My notes\nbad \xff byte\n")


# ---- arXiv metadata snapshot (JSON lines) ---------------------------------------------------

MISSING = object()
GOOD_IDS = ["2501.00001", "0704.0001", "hep-th/9901001", "math.GT/0309136",
            "cond-mat/0102536v2", "2501.00002v3", "arXiv:2501.00003", "solv-int/9901001"]
BAD_IDS = ["", "banana", "2501.1", "hep-th/99", "HEP-TH/9901001", "2501.00001v99999999999",
           "\u0662\u0665\u0660\u0661.\u0660\u0660\u0660\u0660\u0661", "2501.00001 2501.00002",
           "2501.00001\x00", "../2501.00001"]
SURROGATE = "bad \ud800 text"  # what JSON's "\ud800" escape (and non-UTF-8 bytes) decode to
wrong_type = st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False),
                       st.lists(st.integers(), min_size=1, max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), min_size=1,
                                       max_size=2))
# Falsy values of any type mean "none" for the list-like fields.
falsy = st.sampled_from([None, 0, False, "", [], {}])


def either(good, bad):
    """(value, whether the line stays good with it)."""
    return st.one_of(good.map(lambda value: (value, True)), bad.map(lambda value: (value, False)))


text_field = either(st.none() | st.just(MISSING) | st.text(max_size=40),
                    wrong_type | st.just(SURROGATE))
list_field = either(st.just(MISSING) | falsy | st.text(max_size=40)
                    | st.lists(st.text(max_size=12), max_size=4),
                    st.sampled_from([[1], [None], ["ok", 2], {"a": 1}, 5, True, [SURROGATE],
                                     SURROGATE]))
stamp = st.one_of(st.text(max_size=40), wrong_type, st.sampled_from([
    "Mon, 26 May 2025 17:00:00 GMT", "Fri, 31 Dec 9999 23:00:00 -2359",
    "Mon, 26 May 2025 17:00:00 +9999", "Mon, 32 May 2025 17:00:00 GMT", "Tue, 2 Apr 2007",
    "2025-05-26T17:00:00Z"]))
snapshot = st.fixed_dictionaries({
    "id": either(st.sampled_from(GOOD_IDS), st.sampled_from(BAD_IDS) | wrong_type
                 | st.just(MISSING) | st.none()),
    "title": either(st.text(max_size=60).filter(str.split),
                    st.sampled_from(["", "  ", "\n\t", None, MISSING, SURROGATE]) | wrong_type),
    "abstract": text_field, "comment": text_field, "journal-ref": text_field, "doi": text_field,
    "authors": either(st.text(max_size=60) | st.lists(st.text(max_size=12), max_size=4)
                      | st.just(MISSING) | falsy,
                      st.sampled_from([[1], ["ok", None], {"a": 1}, 7, True, SURROGATE,
                                       [SURROGATE]])),
    "authors_parsed": either(st.just(MISSING) | json_values, st.nothing()),
    "categories": list_field,
    "versions": either(st.just(MISSING) | falsy
                       | st.lists(st.fixed_dictionaries({}, optional={
                           "version": st.text(max_size=4), "created": stamp}), max_size=3),
                       st.sampled_from([["v1"], [1], [{"created": "x"}, None], "v1", 5,
                                        {"v1": 1}, True])),
    "update_date": either(st.sampled_from([MISSING, None, "", "2025-05-27", "2007-04-02",
                                           "2025-05-27T10:00:00"]),
                          st.sampled_from(["2025-13-01", "2025-02-30", "yesterday", " ",
                                           "27/05/2025"]) | wrong_type),
})


def record_line(fields: dict) -> tuple[str, bool]:
    row = {name: value for name, (value, _) in fields.items() if value is not MISSING}
    return json.dumps(row), all(ok for _, ok in fields.values())


other_line = st.one_of(
    json_values.filter(lambda value: not isinstance(value, dict)).map(json.dumps),  # not objects
    st.text(max_size=80).filter(lambda line: line.strip() and "\n" not in line
                                and "\r" not in line),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(1, 100_000)),  # too deep
    st.builds(lambda line, cut: line[:cut], snapshot.map(lambda f: record_line(f)[0]),
              st.integers(1, 40)),  # truncated
).map(lambda line: (line, False))
snapshot_lines = st.lists(snapshot.map(record_line) | other_line
                          | st.sampled_from([("", True), ("   ", True)]), max_size=10)


def expected_outcome(lines: list[tuple[str, bool]]) -> tuple[set[int], set[int]]:
    """(numbers of the good lines, numbers of the bad ones); blank lines are neither."""
    good = {n for n, (line, ok) in enumerate(lines, 1) if line.strip() and ok}
    bad = {n for n, (line, ok) in enumerate(lines, 1) if line.strip() and not ok}
    return good, bad


@FAST
@given(snapshot_lines)
def test_snapshot_lines_are_read_or_reported_never_crash(lines):
    good, bad = expected_outcome(lines)
    rows = list(read_jsonl(line for line, _ in lines))
    assert {number for number, paper, _ in rows if paper} == good
    assert {number for number, paper, _ in rows if paper is None} == bad
    for number, paper, error in rows:
        assert (paper is None) != (error is None)
        if error:
            assert error.startswith(f"line {number}: ") and "\n" not in error
            continue
        assert paper.arxiv_id.isascii() and paper.title and 1 <= paper.version < 2**31
        for text in (paper.title, paper.abstract, *paper.authors, *paper.categories):
            text.encode("utf-8")


@pytest.fixture
def no_stages(monkeypatch):
    monkeypatch.setenv("OCTET_STAGES", "none")


@ON_DISK
@given(snapshot_lines,
       st.lists(st.sampled_from([b"\xff\xfe garbage",
                                 b'{"id": "2501.09999", "title": "Bad \xff byte"}']), max_size=2),
       st.booleans())
def test_import_of_a_snapshot_file_stores_good_lines_reports_bad(
        settings, no_stages, tmp_path, capsys, lines, raw, compressed):
    data = b"".join(line.encode("utf-8") + b"\n" for line, _ in lines) + b"".join(
        line + b"\n" for line in raw)
    lines = lines + [(line.decode("latin-1"), False) for line in raw]
    good, bad = expected_outcome(lines)
    path = tmp_path / ("papers.jsonl.xz" if compressed else "papers.jsonl")
    path.write_bytes(lzma.compress(data) if compressed else data)
    capsys.readouterr()
    assert main(["import", str(path), "--json"]) == (0 if good else 1)  # no paper: exit 1
    report = json.loads(capsys.readouterr().out)
    assert report["fetched"] == len(good) and report["skipped"] == len(bad)
    assert set(report["skipped_reasons"]) == {f"line {n}" for n in bad}
    assert all("\n" not in reason for reason in report["skipped_reasons"].values())
    ids = {paper.arxiv_id for _, paper, _ in read_jsonl(
        line for n, (line, _) in enumerate(lines, 1) if n in good)}
    assert set(existing_versions(settings.db_path, sorted(ids))) == ids


MONTHS = itertools.count(2001)


@ON_DISK
@given(st.integers(1, 60), st.integers(0, 10**6))
def test_truncated_xz_keeps_the_lines_before_and_reports_where_it_stopped(
        settings, no_stages, tmp_path, capsys, count, cut):
    month = next(MONTHS)  # fresh ids for each example: the database is shared
    ids = [f"{month}.{n:05d}" for n in range(1, count + 1)]
    data = "".join(json.dumps({"id": arxiv_id, "title": f"Paper {arxiv_id}",
                               "categories": "cs.LG", "authors": "A. B, C. D"}) + "\n"
                   for arxiv_id in ids).encode()
    packed = lzma.compress(data)
    cut %= len(packed)
    path = tmp_path / "snapshot.jsonl.xz"
    path.write_bytes(packed[:cut])
    capsys.readouterr()
    assert main(["import", str(path), "--json"]) == 1  # damaged: cron must hear of it
    report = json.loads(capsys.readouterr().out)
    stored = existing_versions(settings.db_path, ids)
    assert list(stored) == ids[:len(stored)]  # a prefix of the file: nothing after a gap
    assert report["fetched"] == len(stored)
    assert "cannot be read from here on" in report["damaged"]
    assert report["errors"] == [report["damaged"]]
    assert len(report["skipped_reasons"]) <= 1  # at most the line cut in half


def test_regression_snapshot_lines_that_crashed_the_import(settings, no_stages, tmp_path,
                                                           capsys):
    lines = [
        json.dumps({"id": "2501.00001", "title": "Good"}),
        # OverflowError converting 9999-12-31 23:00 -23:59 to UTC (whole import exit 1).
        json.dumps({"id": "2501.00002", "title": "Far future", "versions": [
            {"version": "v1", "created": "Fri, 31 Dec 9999 23:00:00 -2359"}]}),
        # OverflowError / ArrowInvalid: a version that does not fit the INTEGER column.
        json.dumps({"id": "2501.00003v2147483648", "title": "Huge version"}),
        # UnicodeEncodeError in pyarrow: JSON's "\ud800" escape is a lone surrogate.
        '{"id": "2501.00004", "title": "\\ud800"}',
        # RecursionError from json.loads.
        "[" * 100_000,
        # Accepted before as an id made of Arabic-Indic digits (re's \d is Unicode).
        json.dumps({"id": "\u0662\u0665\u0660\u0661.\u0660\u0660\u0660\u0660\u0665",
                    "title": "Not an id"}),
    ]
    path = tmp_path / "snapshot.jsonl"
    # UnicodeDecodeError reading the file: a line with a byte that is not UTF-8.
    path.write_bytes("\n".join(lines).encode() + b'\n{"id": "2501.00007", "title": "\xff"}\n')
    assert main(["import", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fetched"] == 2
    assert set(report["skipped_reasons"]) == {f"line {n}" for n in (3, 4, 5, 6, 7)}
    assert "version 2147483648" in report["skipped_reasons"]["line 3"]
    assert "not valid UTF-8" in report["skipped_reasons"]["line 7"]
    assert set(existing_versions(settings.db_path, ["2501.00001", "2501.00002"])) == {
        "2501.00001", "2501.00002"}
