"""Export the reading list to notes (Obsidian), citations (BibTeX) and plain lists, and
bring what the reader edited in Obsidian back (state, rating, ``## My notes``).

Obsidian layout inside the vault::

    Octet/Papers/<title>.md     one note per paper (frontmatter + summary + My notes)
    Octet/Families/<code>.md    one hub per family, listing the papers read in it
    Octet/Weeks/2026-W48.md     one note per ISO week
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import re
import shutil
import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from pipeline.core.families import FAMILIES
from pipeline.core.paper import abs_url, clean_text, pdf_url
from pipeline.core.settings import Settings
from pipeline.core.weeks import current_week, today
from pipeline.stages import obsidian as note_files
from pipeline.stages import progress
from pipeline.stages.obsidian import Entry, VaultNote
from storage import export as store
from storage import reading
from storage.families import families_for
from storage.papers import load_papers
from storage.summaries import summary_for

log = logging.getLogger(__name__)

DEFAULT_STATES = ("pick", "queued", "read")


class ExportError(ValueError):
    """An export or import cannot go ahead; the message names the fix."""


# ---- what to export ------------------------------------------------------------------------

def parse_states(text: str | None) -> tuple[str, ...]:
    """``"read,queued"`` → ``("read", "queued")``; None → the reading list's states."""
    if not text:
        return DEFAULT_STATES
    states = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [state for state in states if state not in reading.STATES]
    if unknown or not states:
        raise ExportError(f"unknown state {', '.join(unknown) or text!r}; use a comma-separated "
                          f"list of: {', '.join(reading.STATES)}")
    return states


def select_entries(settings: Settings, states: tuple[str, ...] = DEFAULT_STATES,
                   include_all: bool = False, since: date | None = None,
                   arxiv_ids: list[str] | None = None) -> list[Entry]:
    """The papers to export with their reading state, families and summary."""
    rows = store.reading_entries(settings.db_path, states, include_all, since,
                                 current_week(settings.timezone), arxiv_ids)
    ids = [row["arxiv_id"] for row in rows]
    papers = {paper.arxiv_id: paper for paper in load_papers(settings.db_path, ids)}
    families, summaries = _families(settings, ids), _summaries(settings, ids)
    return [Entry(paper=papers[row["arxiv_id"]], state=row["state"], rating=row["rating"],
                  notes=row["notes"], week=row["week"], read_on=row["read_on"],
                  families=families.get(row["arxiv_id"], ()),
                  summary=summaries.get(row["arxiv_id"]))
            for row in rows if row["arxiv_id"] in papers]


def _families(settings: Settings, ids: list[str]) -> dict[str, tuple[str, ...]]:
    """Family labels per classified paper."""
    found = families_for(settings.db_path, ids) if ids else {}
    # "none" marks a paper that fits no family: not a family to link to.
    return {key: tuple(label for label in value.get("labels") or () if label != "none")
            for key, value in found.items()}


def _summaries(settings: Settings, ids: list[str]) -> dict[str, dict]:
    """The summary per summarized paper."""
    return summary_for(settings.db_path, ids) if ids else {}


def family_names() -> dict[str, tuple[str, str]]:
    """Family code → (seed name, definition), e.g. ``LLM`` → ``The Universal Translator —
    Large Language Model``."""
    return {family.code: (family.seed_name, family.definition) for family in FAMILIES}


# ---- Obsidian export -----------------------------------------------------------------------

@dataclass(frozen=True)
class ExistingNote:
    """A paper note already in the vault."""

    path: Path
    """Where it is."""

    note: note_files.NoteFile
    """What it says."""


def _vault(vault: Path) -> Path:
    vault = Path(vault).expanduser().resolve()
    if vault.exists() and not vault.is_dir():
        raise ExportError(f"{vault} is a file; pass the vault's folder with --vault DIR")
    return vault


def scan_papers(folder: Path) -> tuple[dict[str, ExistingNote], set[str], list[Path]]:
    """Notes in ``Octet/Papers``: those Octet wrote (by arXiv id); the case-folded names of
    every other file, which an export must never overwrite; and the notes whose
    frontmatter YAML cannot read (left alone, reported by the import)."""
    owned: dict[str, ExistingNote] = {}
    foreign: set[str] = set()
    broken: list[Path] = []
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        note = note_files.read_note(path)
        arxiv_id = str(note.frontmatter.get("arxiv_id") or "") if note else ""
        if arxiv_id and arxiv_id not in owned:
            owned[arxiv_id] = ExistingNote(path, note)
            continue
        foreign.add(path.stem.casefold())
        if note and not note.frontmatter_ok:
            broken.append(path)
    return owned, foreign, broken


def assign_names(entries: list[Entry], owned: dict[str, ExistingNote],
                 foreign: set[str]) -> dict[str, str]:
    """A unique, stable note name per paper. A note keeps its file name while its title
    does; a new title that collides (ignoring case, as macOS and Windows do) with a
    name in use gets the arXiv id appended."""
    taken = set(foreign) | {existing.path.stem.casefold() for existing in owned.values()}
    names: dict[str, str] = {}
    for entry in entries:
        paper, existing = entry.paper, owned.get(entry.paper.arxiv_id)
        candidates = {note_files.note_stem(paper.title, paper.arxiv_id, with_id)
                      for with_id in (False, True)}
        if existing and existing.path.stem in candidates:
            names[paper.arxiv_id] = existing.path.stem
    claimed = {name.casefold() for name in names.values()}
    for entry in sorted(entries, key=lambda item: item.paper.arxiv_id):
        paper = entry.paper
        if paper.arxiv_id in names:
            continue
        stem = note_files.note_stem(paper.title, paper.arxiv_id, False)
        if stem.casefold() in taken | claimed:
            stem = note_files.note_stem(paper.title, paper.arxiv_id, True)
        names[paper.arxiv_id] = stem
        claimed.add(stem.casefold())
    return names


def export_obsidian(settings: Settings, vault: Path, states: tuple[str, ...] = DEFAULT_STATES,
                    include_all: bool = False, since: date | None = None) -> dict:
    """Write one note per selected paper, the family hubs and the week notes into
    ``vault``; return a report (counts and the files created, renamed, backed up)."""
    vault = _vault(vault)
    folder = vault / note_files.PAPERS
    folder.mkdir(parents=True, exist_ok=True)
    entries = select_entries(settings, states, include_all, since)
    owned, foreign, broken = scan_papers(folder)
    baselines = store.export_baselines(settings.db_path, str(vault))
    names = assign_names(entries, owned, foreign)
    report = _export_report(vault, entries, broken)
    hub_notes = {arxiv_id: _vault_note(existing.path.stem, existing.note.frontmatter)
                 for arxiv_id, existing in owned.items()}
    written = []
    # One file per paper: `--all` on a big library writes tens of thousands. Nothing to
    # export draws no bar (the loop, and so `shown`, never runs).
    with progress.bar("export", len(entries)) if entries else nullcontext() as shown:
        for entry in entries:
            arxiv_id = entry.paper.arxiv_id
            baseline, frontmatter = _write_paper(
                vault, folder, entry, names[arxiv_id], owned.get(arxiv_id),
                baselines.get(arxiv_id), report)
            written.append(baseline)
            hub_notes[arxiv_id] = _vault_note(names[arxiv_id], frontmatter)
            shown.update()
    _write_hubs(vault, list(hub_notes.values()), report)
    store.record_exports(settings.db_path, str(vault), written)
    return report


def _export_report(vault: Path, entries: list[Entry], broken: list[Path]) -> dict:
    """The Obsidian export's report before any note is written."""
    return {"vault": str(vault), "notes": len(entries), "created": 0, "updated": 0,
            "unchanged": 0, "recreated": [], "renamed": [], "backups": [],
            "pending_edits": [], "unreadable": [str(path) for path in broken],
            "families": 0, "weeks": 0}


def _write_paper(vault: Path, folder: Path, entry: Entry, stem: str,
                 existing: ExistingNote | None, baseline: dict | None,
                 report: dict) -> tuple[dict, dict]:
    """Write one paper note; returns (the new export baseline, the frontmatter written)."""
    arxiv_id = entry.paper.arxiv_id
    path = note_files.inside(folder, stem)
    frontmatter = note_files.paper_frontmatter(entry)
    pending = _pending_fields(entry, existing, baseline, frontmatter)
    section, synced_sha = _my_notes(vault, entry, existing, baseline, report)
    if pending or (synced_sha is None and existing is not None):
        report["pending_edits"].append(arxiv_id)
    text = note_files.compose(note_files.render_paper(entry, frontmatter), section)
    changed = note_files.write_if_changed(path, text)
    if existing is None:
        report["created"] += 1
        if baseline:
            report["recreated"].append(str(path))
    elif existing.path != path:
        # A change of case only is the same file on macOS and Windows: keep it.
        if existing.path.exists() and not existing.path.samefile(path):
            existing.path.unlink()
        report["renamed"].append({"from": str(existing.path), "to": str(path)})
        report["updated"] += 1
    else:
        report["updated" if changed else "unchanged"] += 1
    new_baseline = {"arxiv_id": arxiv_id, "file": path.name, "notes_sha": synced_sha,
                    "state": frontmatter["state"], "rating": frontmatter["rating"]}
    for field in pending:  # an edit not yet imported stays an edit for the next import
        new_baseline[field] = baseline[field]
    return new_baseline, frontmatter


def _pending_fields(entry: Entry, existing: ExistingNote | None, baseline: dict | None,
                    frontmatter: dict) -> list[str]:
    """Frontmatter fields the reader changed in Obsidian and has not imported yet: the
    export keeps the reader's value rather than overwrite it."""
    if existing is None or baseline is None:
        return []
    pending = []
    for field, stored in (("state", entry.state), ("rating", entry.rating)):
        value, problem = _field_value(field, existing.note.frontmatter)
        if problem is None and value != baseline[field] and value != stored:
            frontmatter[field] = value
            pending.append(field)
    return pending


def _my_notes(vault: Path, entry: Entry, existing: ExistingNote | None, baseline: dict | None,
              report: dict) -> tuple[str, str | None]:
    """The ``## My notes`` section to write and the fingerprint both sides agree on
    (None when the note holds edits the database does not have yet)."""
    stored = entry.notes
    if existing is None or existing.note.my_notes is None:
        if existing is not None:  # the heading is gone: keep a copy of what the reader had
            report["backups"].append(_backup(vault, existing.path))
        return note_files.initial_notes(stored), note_files.notes_sha(stored)
    section = existing.note.my_notes
    if note_files.normalize_notes(section) == note_files.normalize_notes(stored):
        return section, note_files.notes_sha(section)
    untouched = baseline is not None and baseline["notes_sha"] == note_files.notes_sha(section)
    if untouched and stored is not None:  # edited in the app since the last export
        return note_files.initial_notes(stored), note_files.notes_sha(stored)
    return section, baseline["notes_sha"] if baseline else None


def _backup(vault: Path, path: Path) -> str:
    folder = vault / "Octet" / "Backups"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{path.stem}.{stamp}.md.bak"
    shutil.copy2(path, target)
    log.warning("%s had no '%s' heading; kept a copy in %s", path, note_files.MY_NOTES, target)
    return str(target)


def _vault_note(stem: str, frontmatter: dict) -> VaultNote:
    families = frontmatter.get("families") or []
    rating = frontmatter.get("rating")
    read_on = frontmatter.get("read_on")
    return VaultNote(
        stem=stem, title=str(frontmatter.get("title") or stem),
        families=tuple(str(code) for code in families) if isinstance(families, list) else (),
        state=str(frontmatter.get("state") or "inbox"),
        week=note_files.week_name(str(frontmatter.get("week") or "")),
        read_on=read_on.isoformat() if hasattr(read_on, "isoformat") else
        (str(read_on) if read_on else None),
        rating=rating if isinstance(rating, int) and 1 <= rating <= 5 else None)


def _write_hubs(vault: Path, vault_notes: list[VaultNote], report: dict) -> None:
    """One hub per family and one note per week, over every paper note in the vault."""
    names = family_names()
    by_family: dict[str, list[VaultNote]] = {}
    by_week: dict[str, list[VaultNote]] = {}
    for note in vault_notes:
        for code in note.families:
            by_family.setdefault(code, []).append(note)
        if note.week:
            by_week.setdefault(note.week, []).append(note)
    for code, members in sorted(by_family.items()):
        path = note_files.inside(vault / note_files.FAMILIES, note_files.safe_name(code, "family"))
        name, definition = names.get(code, ("", ""))
        _write_generated(path, note_files.render_family(code, name, members, definition))
    for week, members in sorted(by_week.items()):
        path = note_files.inside(vault / note_files.WEEKS, week)
        _write_generated(path, note_files.render_week(week, members))
    report["families"], report["weeks"] = len(by_family), len(by_week)


def _write_generated(path: Path, generated: str) -> bool:
    """Rewrite a generated note, keeping whatever the reader wrote under ``## My notes``."""
    note = note_files.read_note(path)
    section = note.my_notes if note and note.my_notes is not None else "\n"
    return note_files.write_if_changed(path, note_files.compose(generated, section))


# ---- Obsidian import -----------------------------------------------------------------------

def _field_value(field: str, frontmatter: dict):
    """(value, problem): the state or rating a note's frontmatter holds, or why it is unusable."""
    value = frontmatter.get(field)
    if field == "state":
        text = str(value or "").strip().lower()
        if text in reading.STATES:
            return text, None
        return None, f"state {value!r} is not one of {', '.join(reading.STATES)}"
    if value in (None, ""):
        return None, None
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) < 10:
        value = int(value.strip())  # isdigit() lets '³' through, which int() refuses
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value, None
    return None, f"rating {value!r} is not a whole number from 1 to 5 (or empty)"


def import_obsidian(settings: Settings, vault: Path) -> dict:
    """Bring state, rating and ``## My notes`` edited in Obsidian back into the database.

    A field counts as edited in Obsidian when it differs from what the last export wrote;
    a field the app changed since then is left alone (the next export refreshes the note).
    When both sides changed, the later edit wins for state and rating; notes are never
    overwritten on a conflict, it is reported instead.
    """
    vault = _vault(vault)
    folder = vault / note_files.PAPERS
    if not folder.is_dir():
        raise ExportError(f"{folder} does not exist; run `octet export obsidian --vault {vault}` "
                          "first, or pass the vault that holds the Octet folder")
    owned, _, broken = scan_papers(folder)
    report = {"vault": str(vault), "scanned": len(owned), "changed": [], "unchanged": 0,
              "conflicts": [], "skipped": [
                  {"file": str(path), "reason": "its frontmatter is not valid YAML; fix it in "
                   "Obsidian (or delete the note and export again)"} for path in broken]}
    known = store.stored_ids(settings.db_path, list(owned))
    for arxiv_id in sorted(set(owned) - known):
        report["skipped"].append({"file": str(owned[arxiv_id].path),
                                  "reason": f"{clean_text(arxiv_id)} is not in the database"})
    ids = sorted(known)
    current = {row["arxiv_id"]: row for row in store.reading_entries(
        settings.db_path, (), True, None, current_week(settings.timezone), ids)}
    stored_rows = store.reading_rows(settings.db_path, ids)
    baselines = store.export_baselines(settings.db_path, str(vault))
    updates, synced = [], []
    for arxiv_id in ids:
        update, baseline = _import_one(settings, owned[arxiv_id], current[arxiv_id],
                                       stored_rows.get(arxiv_id), baselines.get(arxiv_id),
                                       report)
        if update:
            updates.append(update)
        synced.append(baseline)
    week, day = current_week(settings.timezone), today(settings.timezone)
    for update in updates:
        reading.set_state(settings.db_path, update["arxiv_id"], update["state"], week, day,
                          rating=update.get("rating", reading.KEEP),
                          notes=update.get("notes", reading.KEEP))
    store.record_exports(settings.db_path, str(vault), synced)
    return report


def _import_one(settings: Settings, existing: ExistingNote, current: dict, stored: dict | None,
                baseline: dict | None, report: dict) -> tuple[dict | None, dict]:
    """Compare one note with the database: (the reading row to save or None, the new
    baseline)."""
    arxiv_id, file = current["arxiv_id"], str(existing.path)
    base = dict(baseline or {"notes_sha": None, "state": None, "rating": None})
    base.update(arxiv_id=arxiv_id, file=existing.path.name)
    changes, update = {}, {}
    newer = _file_is_newer(existing.path, stored)
    for field in ("state", "rating"):
        value, problem = _field_value(field, existing.note.frontmatter)
        if problem:
            report["skipped"].append({"file": file, "reason": problem})
            continue
        verdict = _decide(value, current[field], baseline[field] if baseline else None,
                          baseline is not None, newer)
        if verdict == "apply":
            changes[field] = [current[field], value]
            update[field] = value
        if verdict in ("apply", "same"):
            base[field] = value
        if verdict == "conflict":
            report["conflicts"].append({"arxiv_id": arxiv_id, "file": file, "field": field,
                                        "kept": "database"})
    _import_notes(existing, current, baseline, base, changes, update, report)
    if not update:
        report["unchanged"] += 1
        return None, base
    update.setdefault("state", stored["state"] if stored else current["state"])
    report["changed"].append({"arxiv_id": arxiv_id, "file": file, "changes": changes})
    return {"arxiv_id": arxiv_id, **update}, base


def _decide(file_value, db_value, base_value, has_baseline: bool, file_newer: bool) -> str:
    """What to do with one field: ``same``, ``apply`` (Obsidian edit), ``stale`` (the app
    changed it after the export) or ``conflict`` (both changed; kept the database's)."""
    if file_value == db_value:
        return "same"
    if not has_baseline:
        return "apply"
    if file_value == base_value:
        return "stale"
    if db_value != base_value and not file_newer:
        return "conflict"
    return "apply"


def _import_notes(existing: ExistingNote, current: dict, baseline: dict | None, base: dict,
                  changes: dict, update: dict, report: dict) -> None:
    section = existing.note.my_notes
    if section is None:
        return
    text, stored = note_files.normalize_notes(section), note_files.normalize_notes(current["notes"])
    if not text.isascii() and not _is_utf8(text):
        report["skipped"].append({"file": str(existing.path), "reason": "its '## My notes' "
                                  "are not valid UTF-8; save the note as UTF-8 and import again"})
        return
    sha = note_files.notes_sha(text)
    if text == stored:
        base["notes_sha"] = sha
        return
    if baseline is not None and baseline["notes_sha"] == sha:
        return  # untouched in Obsidian; the app changed the notes since
    if baseline is not None and baseline["notes_sha"] not in (None,
                                                              note_files.notes_sha(stored)):
        report["conflicts"].append({"arxiv_id": current["arxiv_id"], "file": str(existing.path),
                                    "field": "notes", "kept": "both: the database and the note "
                                    "differ; copy what you want to keep into one of them"})
        return
    changes["notes"] = "updated"
    update["notes"] = text or None
    base["notes_sha"] = sha


def _is_utf8(text: str) -> bool:
    """False when the text holds bytes that were not UTF-8 (read with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _file_is_newer(path: Path, stored: dict | None) -> bool:
    if stored is None or stored.get("updated_at") is None:
        return True
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return modified > stored["updated_at"]


# ---- BibTeX --------------------------------------------------------------------------------

_STOPWORDS = frozenset("""a an the of on in for to and or with without via from by at as is are
be do does can what when why how which who towards toward into onto over under about beyond
not no its it this that these those your our their we you all any more less than vs versus
""".split())
_LETTERS = {"ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
            "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "þ": "th", "ð": "d"}
_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


def ascii_fold(text: str) -> str:
    """Latin letters without accents (``Ångström`` → ``Angstrom``); other letters dropped."""
    text = "".join(_LETTERS.get(char, char) for char in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if char.isascii())


def surname(name: str) -> tuple[str, str, str]:
    """(last, suffix, first) of an author name as arXiv writes it (``Jane Q. Doe Jr.``)."""
    name = " ".join(name.split())
    if "," in name:
        last, _, first = name.partition(",")
        return last.strip(), "", first.strip()
    words = name.split(" ")
    suffix = words.pop() if len(words) > 2 and words[-1].lower() in _SUFFIXES else ""
    return words[-1], suffix, " ".join(words[:-1])


def base_key(paper) -> str:
    """``vaswani2017attention``: first author's surname, year, first significant title word."""
    last = surname(paper.authors[0])[0] if paper.authors else ""
    author = re.sub(r"[^a-z]", "", ascii_fold(last).lower()) or "anon"
    title = re.sub(r"\$[^$]*\$|\\[a-zA-Z]+", " ", paper.title or "")
    words = re.findall(r"[a-z0-9]+", ascii_fold(title).lower())
    word = next((item for item in words if item not in _STOPWORDS), "")
    return f"{author}{_year(paper)}{word}"


def _year(paper) -> int:
    if paper.published:
        return paper.published.year
    digits = paper.arxiv_id.split("/")[-1][:2]
    return 2000 + int(digits) if int(digits) < 90 else 1900 + int(digits)


def assign_keys(papers: list, held: dict[str, str]) -> dict[str, str]:
    """Keys for papers that have none yet; the oldest paper of a collision keeps the
    plain key and later ones get ``b``, ``c``, … (then numbers)."""
    taken = set(held.values())
    new: dict[str, str] = {}
    ordered = sorted((paper for paper in papers if paper.arxiv_id not in held),
                     key=lambda paper: (_year(paper), paper.published or datetime.min.replace(
                         tzinfo=timezone.utc), paper.arxiv_id))
    for paper in ordered:
        base = base_key(paper)
        suffixes = itertools.chain([""], "bcdefghijklmnopqrstuvwxyz", map(str, itertools.count(2)))
        key = next(base + suffix for suffix in suffixes if base + suffix not in taken)
        taken.add(key)
        new[paper.arxiv_id] = key
    return new


_TEXT_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}",
                 "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
                 ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''"}
_SYMBOLS = {"–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}",
            "\u00a0": "~", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$",
            "→": r"$\rightarrow$", "←": r"$\leftarrow$", "↔": r"$\leftrightarrow$",
            "∞": r"$\infty$", "±": r"$\pm$", "≈": r"$\approx$", "∼": r"$\sim$",
            "·": r"$\cdot$", "°": r"$^\circ$", "ø": r"{\o}", "Ø": r"{\O}", "ß": r"{\ss}",
            "æ": r"{\ae}", "Æ": r"{\AE}", "œ": r"{\oe}", "Œ": r"{\OE}", "ł": r"{\l}",
            "Ł": r"{\L}", "ı": r"{\i}", "å": r"{\aa}", "Å": r"{\AA}"}
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=",
            "\u0306": "u", "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H",
            "\u030c": "v", "\u0327": "c", "\u0328": "k"}
_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
                   "Psi", "Omega"}


def latex_text(text: str | None) -> str:
    """Text that BibTeX, biber and LaTeX all accept: ``$…$`` math kept when its braces
    balance and it uses only ``obsidian.MATH_COMMANDS`` (never \\input, \\write, \\def …),
    every other special character escaped, braces always balanced, accents and Greek
    letters as LaTeX commands; characters LaTeX cannot typeset (emoji) are dropped."""
    text = " ".join((text or "").split())
    parts = []
    for index, piece in enumerate(re.split(r"(\$[^$]+\$)", text)):
        if index % 2 and _balanced(piece[1:-1]) and note_files.has_safe_commands(piece[1:-1]):
            body = "".join(_math_char(char) for char in piece[1:-1])
            parts.append("$" + re.sub(r"(?<!\\)([%#&])", r"\\\1", body) + "$")
        else:
            parts.append("".join(_text_char(char) for char in piece))
    return " ".join("".join(parts).split())  # dropped characters leave no double spaces


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _greek(char: str) -> str | None:
    name = unicodedata.name(char, "")
    match = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER ([A-Z]+)", name)
    if not match:
        return None
    word = match.group(2).capitalize()
    if match.group(1) == "SMALL":
        return {"Final": "varsigma", "Omicron": "o", "Lamda": "lambda"}.get(word, word.lower())
    word = "Lambda" if word == "Lamda" else word
    return word if word in _GREEK_CAPITALS else None


def _math_char(char: str) -> str:
    greek = _greek(char)
    if greek:
        return f"\\{greek} "
    if char.isascii():
        return char if char.isprintable() else ""
    decomposed = unicodedata.normalize("NFD", char)
    if decomposed[0].isascii():  # accent commands are not allowed in math mode
        return decomposed[0]
    symbol = _SYMBOLS.get(char, "")
    return symbol[1:-1] if symbol.startswith("$") else ""


def _text_char(char: str) -> str:
    if char.isascii():
        return _TEXT_ESCAPES.get(char, char) if char.isprintable() else " "
    if char in _SYMBOLS:
        return _SYMBOLS[char]
    greek = _greek(char)
    if greek:
        return f"$\\{greek}$"
    decomposed = unicodedata.normalize("NFD", char)
    if len(decomposed) == 2 and decomposed[0].isascii() and decomposed[1] in _ACCENTS:
        return f"{{\\{_ACCENTS[decomposed[1]]}{{{decomposed[0]}}}}}"
    if unicodedata.category(char)[0] in "LN":  # other scripts: biber and XeLaTeX print them
        return char
    return ""


def bibtex_author(name: str) -> str:
    """One author as ``Last, First`` (``{Name}`` for a one-word name), escaped; a word
    ``and`` inside a name is braced so it cannot split the author list."""
    last, suffix, first = surname(name)
    pieces = [latex_text(part) for part in (last, suffix, first) if part]
    text = ", ".join(pieces) if first else "{" + latex_text(last) + "}"
    return re.sub(r"\b(and)\b", r"{\1}", text, flags=re.IGNORECASE)


def bibtex_entry(key: str, paper) -> str:
    """One ``@misc`` (``@article`` when there is a journal reference) for a paper."""
    kind = "article" if paper.journal_ref else "misc"
    fields = [("title", "{" + latex_text(paper.title) + "}"),
              ("author", " and ".join(bibtex_author(name) for name in paper.authors
                                      if name.strip())),
              ("year", str(_year(paper)))]
    arxiv_id = _identifier(paper.arxiv_id, _ARXIV_ID)
    if paper.journal_ref:
        fields.append(("journal", latex_text(paper.journal_ref)))
    elif arxiv_id:
        fields.append(("howpublished", f"arXiv:{arxiv_id}"))
    fields += [("eprint", arxiv_id), ("archivePrefix", "arXiv"),
               ("primaryClass", _identifier(paper.primary_category, _CATEGORY)),
               ("url", abs_url(arxiv_id) if arxiv_id else ""), ("doi", _identifier(paper.doi, _DOI))]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{kind}{{{key},\n{body}\n}}\n"


# What an identifier may hold: none of them can close a field ({ }), start a command (\\,
# ^^), a comment (%) or a new entry (@), and none is typeset as text with a special meaning.
_ARXIV_ID = re.compile(r"[A-Za-z0-9./-]*")
_CATEGORY = re.compile(r"[A-Za-z0-9.-]*")
_DOI = re.compile(r"[A-Za-z0-9./:;()<>_+-]*")


def _identifier(value: str | None, pattern: re.Pattern) -> str:
    """The part of an arXiv id, category or DOI up to the first character it may not hold
    (``cs.CL},\\n note = {x`` → ``cs.CL``)."""
    return pattern.match((value or "").strip()).group(0)


def bibtex(settings: Settings, states: tuple[str, ...] = DEFAULT_STATES,
           include_all: bool = False, since: date | None = None) -> tuple[str, int]:
    """The ``.bib`` text for the selected papers and how many entries it holds; keys
    once assigned are stored and reused by every later export."""
    entries = select_entries(settings, states, include_all, since)
    papers = [entry.paper for entry in entries]
    held = store.citation_keys(settings.db_path)
    new = assign_keys(papers, held)
    store.save_citation_keys(settings.db_path, new)
    keys = {**held, **new}
    ordered = sorted(papers, key=lambda paper: keys[paper.arxiv_id])
    header = (f"% Octet reading list: {len(papers)} entries, exported "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n")
    return header + "\n".join(bibtex_entry(keys[paper.arxiv_id], paper)
                              for paper in ordered), len(papers)


# ---- reading lists -------------------------------------------------------------------------

LIST_FIELDS = ("arxiv_id", "title", "authors", "state", "rating", "week", "read_on",
               "families", "published", "url", "pdf", "tldr", "tldr_extractive")


def list_records(entries: list[Entry]) -> list[dict]:
    """One plain record per paper (the JSON and CSV rows of ``octet export list``)."""
    records = []
    for entry in entries:
        paper = entry.paper
        records.append({
            "arxiv_id": paper.arxiv_id, "title": paper.title, "authors": list(paper.authors),
            "state": entry.state, "rating": entry.rating, "week": entry.week,
            "read_on": entry.read_on.isoformat() if entry.read_on else None,
            "families": list(entry.families),
            "published": paper.published.date().isoformat() if paper.published else None,
            "url": abs_url(paper.arxiv_id), "pdf": pdf_url(paper.arxiv_id, paper.version),
            "tldr": (entry.summary or {}).get("tldr"),
            "tldr_extractive": _tldr_copied(entry.summary)})
    return records


def _tldr_copied(summary: dict | None) -> bool | None:
    """Whether the TL;DR is a sentence of the abstract (None without a summary): a model's
    reply that left it empty borrowed it, and a reader must be able to tell."""
    if not summary:
        return None
    return bool(summary.get("extractive") or "tldr" in (summary.get("fallback_fields") or ()))


def reading_list(entries: list[Entry], form: str = "md") -> str:
    """The reading list as a Markdown checklist (``md``), ``csv`` or ``json``."""
    records = list_records(entries)
    if form == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LIST_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(_csv_row(record))
        return buffer.getvalue()
    if form == "md":
        return "".join(_checklist_line(record) for record in records)
    raise ExportError(f"unknown format {form!r}; use md, csv or json")


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(…)).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value):
    """A CSV cell a spreadsheet shows as text: one that starts like a formula gets a
    leading single quote (the usual neutralisation); other values are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_row(record: dict) -> dict:
    """One CSV row; text from a paper or a model is on one line and never a formula."""
    row = {**record, "title": note_files.one_line(record["title"]),
           "authors": "; ".join(note_files.one_line(name) for name in record["authors"]),
           "families": " ".join(note_files.one_line(code) for code in record["families"]),
           "tldr": note_files.one_line(record["tldr"]) if record["tldr"] else record["tldr"]}
    return {name: spreadsheet_cell(value) for name, value in row.items()}


def _checklist_line(record: dict) -> str:
    """One checklist item; every text from a paper or a model is escaped, so the only
    link is the paper's own and nothing forms an image, a heading or HTML."""
    title = note_files.escape_markdown(record["title"])
    authors = record["authors"]
    byline = note_files.escape_markdown(authors[0]) + (" et al." if len(authors) > 1 else "") \
        if authors else ""
    families = ", ".join(note_files.escape_markdown(code) for code in record["families"])
    details = [part for part in (byline, (record["published"] or "")[:4], families,
                                 record["state"]) if part]
    if record["rating"]:
        details.append("★" * record["rating"])
    box = "x" if record["state"] == "read" else " "
    return f"- [{box}] [{title}]({record['url']}) — {' · '.join(details)}\n"
