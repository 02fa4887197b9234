"""Round 4 of family labeling: check the seven labelers' files, append the 1,050 papers to
``pipeline/data/families_read.jsonl`` (train split), embed them into
``families_embeddings.npz`` and write the blind second reader's agreement
(``fam_agreement_round4.json``). Disagreements are settled by the rules afterwards, by hand
(``SETTLED`` below: the label set decided on reading both answers). Run from the repository root."""
from pathlib import Path

from rounds import merge_round

FOLDER = Path('/work/labeling4')
LABELERS = 7
SETTLED: dict[str, list[str]] = {
    '2507.19939': ['LCM'],  # the MLLM is the T2I method's layout planner, a component
    '2510.19628': ['none'],  # a news-similarity dataset; LLMs are one group of tested models
    '2604.26752': ['VLM', 'LLM'],  # a multimodal agent foundation model that keeps text coding central
    '2606.30901': ['none'],  # a prototype classifier; text anchoring is one of three parts
    # Not a second-reader disagreement: the labeler gave LLM + MLM, against round 3's reading
    # of continuous (not masked) diffusion language models (LLM, doubtful).
    '2604.11748': ['LLM'],
}
"""arxiv_id → labels, for second-reader disagreements settled by re-reading under the rules."""


if __name__ == '__main__':
    merge_round(FOLDER, LABELERS, 4, SETTLED)
