"""`octet classify`, `octet eval`, `octet label`, `octet train`: the eight families."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.core.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, UsageError
from pipeline.core.families import CODES, NONE, family, normalize_labels
from pipeline.core.paper import Paper
from pipeline.stages import progress
from pipeline.stages.family_judge import (DEFAULT_MARGIN, Judgement, JudgeUnreachable,
                                          judge_all, judged_metrics, make_judge,
                                          recheck_uncertain)

CLASSIFY_BACKENDS = ("head", "llm")
"""``--backend`` of classify and eval: the embedding head, or the LLM judge beside it."""


def register(subparsers) -> None:
    """Add the family subcommands to the `octet` parser."""
    command = subparsers.add_parser(
        "classify", help="classify papers from a JSONL file (no database needed), or "
        "re-check the stored papers the classifier is unsure of with an LLM (--recheck)")
    command.add_argument("--input",
                         help="JSONL: one paper per line with id (or arxiv_id), title, abstract")
    command.add_argument("--output", default="-", help="JSONL to write (default: stdout)")
    command.add_argument("--backend", choices=CLASSIFY_BACKENDS, default="head",
                         help="head: the embedding classifier (default); llm: also ask the "
                         "configured generative model (summarizer = hf or openai, with model)")
    command.add_argument("--recheck", action="store_true",
                         help="with --backend llm, no --input: judge the stored papers whose "
                         "head scores are uncertain and store the judgements")
    command.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                         help="--recheck: a probability this close to its family's threshold "
                         f"is uncertain (default {DEFAULT_MARGIN})")
    command.add_argument("--limit", type=int, help="--recheck: at most N papers, the most "
                         "uncertain first")
    command.add_argument("--json", action="store_true", help="--recheck: print the result "
                         "as JSON")
    command.set_defaults(handler=classify_command)

    command = subparsers.add_parser(
        "eval", help="measure the classifier on labeled papers (precision/recall/F1, …)")
    command.add_argument("--labeled", help="JSONL with id/arxiv_id, title, abstract, labels "
                         "(default: the shipped held-out split, with the cross-validation "
                         "on the shipped training labels beside it)")
    command.add_argument("--folds", type=int, help="cross-validate with this many folds "
                         "instead of scoring the model in use")
    command.add_argument("--seed", type=int, default=0, help="fold shuffle seed (default 0)")
    command.add_argument("--json", action="store_true", help="print the metrics as JSON")
    command.add_argument("--backend", choices=CLASSIFY_BACKENDS, default="head",
                         help="head: the embedding classifier (default); llm: the configured "
                         "generative model as judge (no --folds)")
    command.set_defaults(handler=eval_command)

    command = subparsers.add_parser(
        "label", help="set your own families for a paper: octet label ID +VLM -LAM")
    command.add_argument("arxiv_id", help="the paper's arXiv id")
    command.add_argument("changes", nargs=argparse.REMAINDER,
                         help="+CODE adds, -CODE removes, CODE sets; 'none' clears all; "
                              "'--clear' forgets your labels (the model's apply again)")
    command.set_defaults(handler=label_command)

    command = subparsers.add_parser(
        "train", help="retrain the classifier with the shipped labels plus yours")
    command.add_argument("--no-reader", action="store_true",
                         help="train on the shipped labels only")
    command.add_argument("--output", help="where to write the head "
                         "(default: <home>/models/families_head.npz, used from then on)")
    command.set_defaults(handler=train_command)


# ---- reading JSONL -------------------------------------------------------------------------


def read_rows(path: str, need_labels: bool = False) -> tuple[list[dict], list[str]]:
    """Valid paper rows and one error line per bad row (naming the line number)."""
    source = Path(path)
    if not source.is_file():
        raise UsageError(f"{path} does not exist; pass a JSONL file with one paper per line")
    rows, errors = [], []
    with source.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                rows.append(_paper_row(line, need_labels))
            except ValueError as error:
                errors.append(f"{path}:{number}: {error}")
    return rows, errors


def _paper_row(line: str, need_labels: bool) -> dict:
    if not line.strip():
        raise ValueError("empty line; remove it or put a JSON object with title and abstract")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg}); each line must be one JSON object")
    if not isinstance(record, dict):
        raise ValueError("not a JSON object; each line must be {\"id\", \"title\", \"abstract\"}")
    identifier = record.get("id") or record.get("arxiv_id")
    title = record.get("title")
    if not identifier or not isinstance(title, str) or not title.strip():
        raise ValueError("needs a non-empty \"id\" (or \"arxiv_id\") and \"title\"")
    abstract = record.get("abstract") or ""
    if not isinstance(abstract, str):
        raise ValueError("\"abstract\" must be a string")
    row = {"id": str(identifier), "title": " ".join(title.split()),
           "abstract": " ".join(abstract.split())}
    if need_labels:
        row["labels"] = _row_labels(record)
    return row


def _row_labels(record: dict) -> list[str]:
    labels = record.get("labels")
    if not isinstance(labels, list) or not labels:
        raise ValueError(f"needs \"labels\": a list of family codes ({', '.join(CODES)}) "
                         "or [\"none\"]")
    try:
        return normalize_labels(labels)
    except KeyError as error:
        raise ValueError(error.args[0]) from None


# ---- classify ------------------------------------------------------------------------------


def classify_command(args, settings) -> int:
    _check_classify_flags(args)
    if args.recheck:
        return recheck_command(args, settings)
    judge = make_judge(settings) if args.backend == "llm" else None
    rows, errors = read_rows(args.input)
    for error in errors:
        print(f"octet: {error}", file=sys.stderr)
    items = [item.to_json() for item in _classified(rows, settings)]
    if judge is not None and _add_judgements(judge, rows, items) is None:
        return EXIT_UNREACHABLE
    _write_rows(args.output, items, errors)
    return EXIT_USAGE if errors else EXIT_OK


def _classified(rows: list[dict], settings) -> list:
    """The head's classification of every row, a batch at a time under a bar: a file of
    75,000 papers takes many minutes (on 1,000 real papers, batches scored as one call)."""
    if not rows:
        return []
    from pipeline.stages.families import BATCH_SIZE, classify_texts, current_head

    head, results = current_head(settings.home), []
    with progress.bar("classify", len(rows)) as shown:
        for start in range(0, len(rows), BATCH_SIZE):
            part = rows[start:start + BATCH_SIZE]
            results += classify_texts([r["id"] for r in part], [r["title"] for r in part],
                                      [r["abstract"] for r in part], head, device=settings.device)
            shown.update(len(part))
    return results


def _check_classify_flags(args) -> None:
    if args.recheck and args.backend != "llm":
        raise UsageError("--recheck asks the LLM judge: use octet classify --backend llm "
                         "--recheck")
    if args.recheck and args.input:
        raise UsageError("--recheck works on the stored papers: leave out --input (or drop "
                         "--recheck to classify the file)")
    if not args.recheck and not args.input:
        raise UsageError("pass --input FILE.jsonl, or --backend llm --recheck for the stored "
                         "papers")
    if not 0 <= args.margin <= 1:
        raise UsageError("--margin must be between 0 and 1 (a probability distance)")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1 (leave it out to re-check every "
                         "uncertain paper)")


def _add_judgements(judge, rows: list[dict], items: list[dict]) -> list[dict] | None:
    """Each row's ``judge`` entry, and its ``labels`` the judge's where it answered;
    ``None`` (after one line on stderr) when the judge's server cannot be reached."""
    papers = [Paper(arxiv_id=r["id"], version=0, title=r["title"], abstract=r["abstract"])
              for r in rows]
    try:
        verdicts = judge_all(judge, papers)
    except JudgeUnreachable as error:
        print(f"octet: {error}; nothing was written", file=sys.stderr)
        return None
    finally:
        judge.close()
    for item, verdict in zip(items, verdicts):
        if isinstance(verdict, Judgement):
            item["labels"] = list(verdict.labels) or [NONE]
            item["judge"] = {"labels": item["labels"], "judge_version": verdict.judge_version}
        else:
            item["judge"] = {"error": verdict.error}
    return items


def _write_rows(output: str, items: list[dict], errors: list[str]) -> None:
    lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    if output == "-":
        sys.stdout.write(lines)
    else:
        Path(output).write_text(lines, encoding="utf-8")
        print(f"classified {len(items)} papers → {output}"
              + (f" ({len(errors)} bad rows skipped)" if errors else ""))


def recheck_command(args, settings) -> int:
    """``octet classify --backend llm --recheck``: judge and store the uncertain papers."""
    judge = make_judge(settings)  # a configuration error stops here, before any work
    try:
        result = recheck_uncertain(settings, args.margin, args.limit, judge)
    except JudgeUnreachable as error:
        done = error.result or {"checked": 0}
        print(f"octet: {error}; {done['checked']} papers were re-checked and stored before "
              "it stopped, the rest are asked next time", file=sys.stderr)
        if args.json:
            print(json.dumps({**done, "error": str(error)}, indent=2))
        return EXIT_UNREACHABLE
    print(json.dumps(result, indent=2) if args.json else format_recheck(result))
    return EXIT_OK


def format_recheck(result: dict) -> str:
    """The re-check's one-line summary, then one line per failed paper."""
    lines = [f"re-checked {result['checked']} uncertain papers with {result['judge_version']}: "
             f"{result['changed']} changed, {result['failed']} failed"
             + (" (asked again next time)" if result["failed"] else "")]
    lines += [f"  failed {item['arxiv_id']}: {item['error']}" for item in result["errors"]]
    return "\n".join(lines)


# ---- eval ----------------------------------------------------------------------------------


def eval_command(args, settings) -> int:
    if args.backend == "llm":
        return judge_eval_command(args, settings)
    if args.folds is not None and args.folds < 2:
        raise UsageError("--folds must be at least 2; or leave it out to score the model in use")
    if not args.labeled:
        metrics = _shipped_metrics(settings, args.folds or 5, args.seed, held_out=not args.folds)
        print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
        return EXIT_OK
    labeled, errors = _labeled_from_file(args.labeled, settings)
    for error in errors:
        print(f"octet: {error}", file=sys.stderr)
    if len(labeled.ids) < (args.folds or 1):
        raise UsageError(f"{len(labeled.ids)} valid labeled papers are too few; "
                         "add papers or use fewer --folds")
    metrics = _file_metrics(settings, labeled, args.folds, args.seed)
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return EXIT_USAGE if errors else EXIT_OK


def judge_eval_command(args, settings) -> int:
    """``octet eval --backend llm``: the LLM judge on the held-out split (and its random and
    targeted parts), or on ``--labeled FILE``."""
    if args.folds is not None:
        raise UsageError("--folds cross-validates the head; the llm judge is not trained: "
                         "leave out --folds")
    judge = make_judge(settings)
    errors: list[str] = []
    try:
        metrics = (_judged_file(judge, args.labeled, errors) if args.labeled
                   else _judged_heldout(judge))
    except JudgeUnreachable as error:
        print(f"octet: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        judge.close()
    for error in errors:
        print(f"octet: {error}", file=sys.stderr)
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return EXIT_USAGE if errors else EXIT_OK


def _judged_heldout(judge) -> dict:
    from pipeline.stages import families as classify

    heldout = classify.heldout_labeled()
    verdicts = dict(zip(heldout.ids, _verdicts(judge, heldout.ids, heldout.titles,
                                               heldout.abstracts)))
    metrics = judged_metrics(heldout.labels, [verdicts[i] for i in heldout.ids])
    metrics["method"] = f"llm judge ({judge.judge_version}) on the held-out split"
    for part in ("random", "targeted"):
        labeled = classify.heldout_labeled(part)
        metrics[part] = judged_metrics(labeled.labels, [verdicts[i] for i in labeled.ids])
    metrics["judge_version"] = judge.judge_version
    return metrics


def _judged_file(judge, path: str, errors: list[str]) -> dict:
    rows, bad = read_rows(path, need_labels=True)
    errors.extend(bad)
    if not rows:
        raise UsageError(f"{path} has no valid labeled paper; see the lines above")
    verdicts = _verdicts(judge, [r["id"] for r in rows], [r["title"] for r in rows],
                         [r["abstract"] for r in rows])
    metrics = judged_metrics([r["labels"] for r in rows], verdicts)
    metrics["method"] = f"llm judge ({judge.judge_version})"
    metrics["judge_version"] = judge.judge_version
    return metrics


def _verdicts(judge, ids: list[str], titles: list[str], abstracts: list[str]) -> list:
    return judge_all(judge, [Paper(arxiv_id=i, version=0, title=t, abstract=a or "")
                             for i, t, a in zip(ids, titles, abstracts)])


def _shipped_metrics(settings, folds: int, seed: int, held_out: bool) -> dict:
    """The model in use on the held-out split (and on its random and targeted parts), with
    the cross-validation on the shipped training labels beside it; or that alone."""
    from pipeline.stages import families as classify

    cross = classify.cross_validate_shipped(folds, seed)
    cross["method"] = (f"{folds}-fold cross-validation on the hand-labeled training papers "
                       f"(title-rule rows always in training)")
    if not held_out:
        return cross
    head = classify.current_head(settings.home)
    metrics = _scored(head, classify.heldout_labeled())
    metrics["method"] = f"model in use ({head.version}) on the held-out split"
    for part in ("random", "targeted"):
        metrics[part] = _scored(head, classify.heldout_labeled(part))
    metrics["cross_validation"] = cross
    return metrics


def _scored(head, labeled) -> dict:
    from pipeline.stages.families import evaluate

    return evaluate(labeled.targets(), head.decide(head.probabilities(labeled.features())))


def _file_metrics(settings, labeled, folds: int | None, seed: int) -> dict:
    from pipeline.stages import families as classify

    if folds:
        metrics = classify.cross_validate_labeled(labeled, folds, seed)
        metrics["method"] = f"{folds}-fold cross-validation (+ shipped labels outside the file)"
        return metrics
    head = classify.current_head(settings.home)
    metrics = _scored(head, labeled)
    metrics["method"] = f"model in use ({head.version})"
    return metrics


def _labeled_from_file(path: str, settings):
    from pipeline.stages.families import LabeledSet, shipped_labeled
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    rows, errors = read_rows(path, need_labels=True)
    shipped = shipped_labeled()
    known = {i: (t, v) for i, t, v in zip(shipped.ids, shipped.titles, shipped.vectors)}
    # Reuse shipped embeddings of the same paper (same title); embed only the rest.
    missing = [r for r in rows if known.get(r["id"], ("",))[0] != r["title"]]
    fresh = dict(zip([r["id"] for r in missing], embed_texts(
        [paper_text(r["title"], r["abstract"]) for r in missing], device=settings.device)))
    vectors = [fresh[r["id"]] if r["id"] in fresh else known[r["id"]][1] for r in rows]
    import numpy as np

    matrix = np.stack(vectors) if vectors else np.zeros((0, 384), dtype=np.float32)
    return LabeledSet([r["id"] for r in rows], [r["title"] for r in rows],
                      [r["abstract"] for r in rows], [r["labels"] for r in rows], matrix), errors


def format_metrics(metrics: dict) -> str:
    """The metrics as a small plain-text report (and the parts and cross-validation beside)."""
    lines = [f"{metrics['papers']} papers · {metrics['method']}",
             f"{'family':<8}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}"]
    for code, item in metrics["families"].items():
        lines.append(f"{code:<8}{item['precision']:>10.3f}{item['recall']:>8.3f}"
                     f"{item['f1']:>8.3f}{item['support']:>9d}")
    lines += [_summary_line("", metrics),
              "worst confusions (missed→predicted instead): " + (", ".join(
                  f"{item['pair']} ×{item['count']}" for item in metrics["confusions"]) or "none")]
    for part in ("random", "targeted"):
        if part in metrics:
            lines.append(_summary_line(f"{part} part ({metrics[part]['papers']} papers): ",
                                       metrics[part]))
    if metrics.get("failed"):
        lines.append(f"the judge gave no usable answer for {metrics['failed']} papers "
                     "(counted as none)")
    if "cross_validation" in metrics:
        cross = metrics["cross_validation"]
        lines.append(_summary_line(f"{cross['method']} ({cross['papers']} papers): ", cross))
    return "\n".join(lines)


def _summary_line(prefix: str, metrics: dict) -> str:
    return (f"{prefix}macro-F1 {metrics['macro_f1']:.3f} · exact label set "
            f"{metrics['exact_set_accuracy']:.3f} · none accuracy {metrics['none_accuracy']:.3f} "
            f"(precision {metrics['none_precision']:.3f}) · badge precision "
            f"{metrics['badge_precision']:.3f}")


# ---- label ---------------------------------------------------------------------------------


def apply_changes(current: list[str], changes: list[str]) -> list[str]:
    """The label set after ``+CODE`` / ``-CODE`` / ``CODE`` / ``none`` changes."""
    labels = set(current)
    plain = [c for c in changes if not c.startswith(("+", "-"))]
    if plain:  # bare codes say what the set is; +/- adjust from there
        labels = set()
    for change in changes:
        code = change.lstrip("+-")
        if code.lower() == NONE:
            labels = set()
            continue
        try:
            code = family(code).code
        except KeyError as error:
            raise UsageError(f"{error.args[0]} (e.g. octet label 2506.01234 +VLM -LAM)") from None
        if change.startswith("-"):
            labels.discard(code)
        else:
            labels.add(code)
    return [code for code in CODES if code in labels]


def label_command(args, settings) -> int:
    from pipeline.core.paper import InvalidArxivId, normalize_id
    from storage import families as store
    from storage.papers import existing_versions

    try:
        arxiv_id = normalize_id(args.arxiv_id)
    except InvalidArxivId as error:
        raise UsageError(str(error)) from None
    if not existing_versions(settings.db_path, [arxiv_id]):
        raise UsageError(f"{arxiv_id} is not in the database; fetch it first "
                         "(octet run, octet fetch or octet import)")
    if args.changes == ["--clear"]:
        store.clear_reader_labels(settings.db_path, arxiv_id)
    elif args.changes:
        current = store.families_for(settings.db_path, [arxiv_id]).get(arxiv_id, {})
        labels = apply_changes(current.get("labels", []), args.changes)
        store.set_reader_labels(settings.db_path, arxiv_id, labels)
    shown = store.families_for(settings.db_path, [arxiv_id]).get(arxiv_id)
    if shown is None:
        print(f"{arxiv_id}: not classified yet (octet run classifies it)")
    else:
        print(f"{arxiv_id}: {', '.join(shown['labels']) or NONE} ({shown['source']})")
    return EXIT_OK


# ---- train ---------------------------------------------------------------------------------


def train_command(args, settings) -> int:
    from pipeline.stages import families as classify

    reader = None if args.no_reader else reader_set(settings)
    output = Path(args.output) if args.output else classify.user_head_path(settings.home)
    head = classify.train_and_save(output, reader)
    count = len(reader.ids) if reader else 0
    print(f"trained {head.version} on {head.info['papers']} papers ({count} labeled by you) "
          f"→ {output}; the next `octet run` rescores every paper with it")
    return EXIT_OK


def reader_set(settings):
    """The reader's labeled papers as a ``LabeledSet`` (embedding those not embedded yet)."""
    import numpy as np

    from pipeline.stages.families import LabeledSet
    from pipeline.core.text import DIMENSIONS, paper_text
    from pipeline.stages.encoder import embed_texts
    from storage import families as store

    rows = store.reader_labeled(settings.db_path)
    missing = [row for row in rows if row["vector"] is None]
    fresh = embed_texts([paper_text(r["title"], r["abstract"]) for r in missing],
                        device=settings.device)
    for row, vector in zip(missing, fresh):
        row["vector"] = vector
    matrix = np.stack([r["vector"] for r in rows]) if rows else np.zeros((0, DIMENSIONS),
                                                                         dtype=np.float32)
    return LabeledSet([r["arxiv_id"] for r in rows], [r["title"] for r in rows],
                      [r["abstract"] for r in rows], [r["labels"] for r in rows], matrix)
