"""Round 4 of family labeling: check the seven labelers' files, append the 1,050 papers to
``pipeline/data/families_read.jsonl`` (train split), embed them into
``families_embeddings.npz`` and write the blind second reader's agreement
(``fam_agreement_round4.json``). Disagreements are settled by the rules afterwards, by hand
(``SETTLED`` below: the label set decided on reading both answers). Run from the repository root."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, '.')
from pipeline.core.families import CODES, NONE  # noqa: E402
from pipeline.core.text import paper_text  # noqa: E402
from pipeline.stages.encoder import embed_texts  # noqa: E402

FOLDER = Path('/work/labeling4')
DATA = Path('pipeline/data')
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


def read_jsonl(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def checked(row):
    labels = row['labels']
    assert labels and all(code in CODES or code == NONE for code in labels), row
    assert NONE not in labels or labels == [NONE], row
    return labels


def kappa(first, second):
    first, second = np.asarray(first, float), np.asarray(second, float)
    observed = np.mean(first == second)
    expected = first.mean() * second.mean() + (1 - first.mean()) * (1 - second.mean())
    return 1.0 if expected == 1 else round(float((observed - expected) / (1 - expected)), 3)


def agreement(first: dict, second: dict) -> dict:
    ids = sorted(second)
    result = {'round': 4, 'papers': len(ids),
              'exact_set': round(float(np.mean([set(first[i]) == set(second[i]) for i in ids])), 4),
              'kappa': {}}
    for code in (*CODES, NONE):
        result['kappa'][code] = kappa([code in first[i] for i in ids], [code in second[i] for i in ids])
    result['disagreements'] = [{'arxiv_id': i, 'first': first[i], 'second': second[i]}
                               for i in ids if set(first[i]) != set(second[i])]
    return result


def main():
    meta = read_jsonl(FOLDER / 'pool_meta.jsonl')
    labels = {}
    for k in range(7):
        pool = [row['arxiv_id'] for row in read_jsonl(FOLDER / f'pool{k}.jsonl')]
        answered = {row['arxiv_id']: row for row in read_jsonl(FOLDER / f'labels{k}.jsonl')}
        assert set(pool) == set(answered), f'labels{k}: {len(set(pool) - set(answered))} missing'
        labels.update(answered)
    second = {row['arxiv_id']: checked(row) for row in read_jsonl(FOLDER / 'second_labels.jsonl')}
    first = {i: checked(row) for i, row in labels.items()}
    found = agreement(first, second)
    if '--check' in sys.argv:  # before settling: print the disagreements only
        print(json.dumps(found, indent=1))
        return
    Path('bench/labeling/fam_agreement_round4.json').write_text(json.dumps(found) + '\n')
    rows = []
    for row in meta:
        answer = labels[row['arxiv_id']]
        final = SETTLED.get(row['arxiv_id'], answer['labels'])
        rows.append({**{key: row[key] for key in ('arxiv_id', 'title', 'abstract', 'categories',
                                                  'listed_date')},
                     'labels': final, 'primary_label': final[0],
                     'doubtful': bool(answer.get('doubtful')) or row['arxiv_id'] in SETTLED,
                     'note': answer.get('note', ''), 'selection': row['selection'],
                     'query': row['query'] or None, 'split': 'train',
                     'second_reader': second.get(row['arxiv_id'])})
    with open(DATA / 'families_read.jsonl', 'a') as handle:
        for row in rows:
            handle.write(json.dumps(row) + '\n')
    store = dict(np.load(DATA / 'families_embeddings.npz', allow_pickle=False))
    new = [row for row in rows if row['arxiv_id'] not in set(store['ids'].tolist())]
    vectors = embed_texts([paper_text(r['title'], r['abstract']) for r in new], device='cpu')
    titles = embed_texts([paper_text(r['title'], '') for r in new], device='cpu')
    store['ids'] = np.concatenate([store['ids'], np.array([r['arxiv_id'] for r in new])])
    store['vectors'] = np.vstack([store['vectors'], vectors.astype(np.float16)])
    store['title_vectors'] = np.vstack([store['title_vectors'], titles.astype(np.float16)])
    np.savez_compressed(DATA / 'families_embeddings.tmp.npz', **store)
    (DATA / 'families_embeddings.tmp.npz').replace(DATA / 'families_embeddings.npz')
    print(json.dumps({k: v for k, v in found.items() if k != 'disagreements'}))
    print(len(found['disagreements']), 'disagreements;', len(rows), 'rows appended')


if __name__ == '__main__':
    main()
