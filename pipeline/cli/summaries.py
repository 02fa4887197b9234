"""`octet summarize`: (re)summarize the papers whose summary is missing or stale."""
from __future__ import annotations

import dataclasses
import json

from pipeline.core.errors import UsageError
from pipeline.stages.summaries import BACKENDS


def register(subparsers) -> None:
    """Add ``octet summarize`` to the `octet` parser."""
    parser = subparsers.add_parser(
        "summarize", help="summarize the papers with a missing or stale summary",
        description="Summarize every stored paper that has no summary from the chosen "
                    "backend at its current version (new papers, new versions, a new model "
                    "or prompt). Failed papers are listed and retried on the next run.")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="auto (hf with CUDA: the configured model or the default small "
                             "instruct model; else extractive), extractive, hf or openai "
                             "(setting `summarizer`, env OCTET_SUMMARIZER)")
    parser.add_argument("--model", help="Hugging Face id or local folder (hf), or the "
                        "server's model id (openai) (env OCTET_MODEL)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N for hf (env OCTET_DEVICE)")
    parser.add_argument("--batch-size", dest="batch_size", type=int,
                        help="papers per generation batch (env OCTET_BATCH_SIZE)")
    parser.add_argument("--limit", type=int, help="summarize at most N pending papers")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=summarize_command)


def summarize_command(args, settings) -> int:
    from pipeline.stages.summaries import summarize_pending

    if settings.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1 (leave it out to summarize everything)")
    if args.backend:
        settings = dataclasses.replace(settings, summarizer=args.backend)
    result = summarize_pending(settings, limit=args.limit)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_result(result)
    if result.get("error"):
        raise UsageError(result["error"])
    return 1 if result["errors"] else 0


def _print_result(result: dict) -> None:
    if result.get("notice"):
        print(result["notice"])
    print(f"summarized {result['summarized']} of {result['pending']} pending papers with "
          f"{result['backend']} ({result['model']}, {result['prompt_version']})")
    for failure in result["errors"]:
        print(f"  failed {failure['arxiv_id']}: {failure['error']} (retried next run)")
