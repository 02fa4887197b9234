"""Round 3 of family labeling: check the four labelers' files, append the 600 papers to
``pipeline/data/families_read.jsonl`` (train split), embed them into
``families_embeddings.npz`` and write the blind second reader's agreement
(``fam_agreement_round3.json``). Disagreements are settled by the rules afterwards, by hand
(``SETTLED`` below: the label set decided on reading both answers). Run from the repository root."""
from pathlib import Path

from rounds import merge_round

FOLDER = Path('/work/labeling3')
LABELERS = 4
SETTLED: dict[str, list[str]] = {}
"""arxiv_id → labels, for second-reader disagreements settled by re-reading under the rules."""


if __name__ == '__main__':
    merge_round(FOLDER, LABELERS, 3, SETTLED)
