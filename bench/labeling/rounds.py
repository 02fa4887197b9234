"""What every family labeling round shares: drawing its pools from the shared listings, and
merging the labelers' answers with the blind second reader's agreement. The round scripts
(``make_pools_roundN.py``, ``merge_roundN.py``) hold only what differs: seeds, queries,
counts and the settled disagreements. Run them from the repository root with ../shared
beside it."""
import json
import lzma
import re
import sys
from pathlib import Path

import numpy as np

SHARED = '../shared'
LISTINGS = SHARED + '/data/arxiv_listings_cs_2025_2026.jsonl.xz'
DATA = Path('pipeline/data')
POOL_FIELDS = ('arxiv_id', 'title', 'abstract', 'categories')


def read_jsonl(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def unlabeled_listings(read_ids=None):
    """Listed papers with an abstract that no dev, title-rule or read row has labeled."""
    rows = [json.loads(line) for line in lzma.open(LISTINGS, 'rt')]
    dev = {row['arxiv_id'] for row in read_jsonl(SHARED + '/data/labeled_dev.jsonl')}
    weak = {row['arxiv_id'] for row in read_jsonl(DATA / 'families_labeled.jsonl')}
    read = read_ids if read_ids is not None else {
        row['arxiv_id'] for row in read_jsonl(DATA / 'families_read.jsonl')}
    return [r for r in rows if r['id'] not in dev | weak | read and (r.get('abstract') or '').strip()]


def pool_row(listing, selection, query):
    """A pool row in the labeling layout; ``selection`` None leaves the field out (round 2)."""
    row = dict(arxiv_id=listing['id'], title=listing['title'], abstract=listing['abstract'],
               categories=listing['categories'], listed_date=listing.get('listed_date'))
    if selection is not None:
        row['selection'] = selection
    row['query'] = query
    return row


def draw_random(rows, rng, count, taken):
    """``count`` seeded random papers; their ids join ``taken``."""
    drawn = rng.sample(rows, count)
    taken.update(r['id'] for r in drawn)
    return [pool_row(r, 'random', '') for r in drawn]


def draw_targeted(rows, rng, queries, taken, selection='targeted'):
    """For each ``(name, pattern, count)``, up to ``count`` seeded papers whose title or
    abstract matches ``pattern`` and that no earlier query took."""
    out = []
    for name, pattern, count in queries:
        regex = re.compile(pattern, re.I | re.S)
        hits = [r for r in rows if r['id'] not in taken and regex.search(r['title'] + ' ' + r['abstract'])]
        for r in rng.sample(hits, min(count, len(hits))):
            taken.add(r['id'])
            out.append(pool_row(r, selection, name))
    return out


def write_pools(folder, out, labelers, second):
    """``pool_meta.jsonl`` (every field), one ``poolK.jsonl`` per labeler (round robin) and
    ``second_pool.jsonl`` for the blind second reader (the labeling fields only)."""
    with open(f'{folder}/pool_meta.jsonl', 'w') as handle:
        for r in out:
            handle.write(json.dumps(r) + '\n')
    for k in range(labelers):
        _write_fields(f'{folder}/pool{k}.jsonl', out[k::labelers])
    _write_fields(f'{folder}/second_pool.jsonl', second)
    print('total', len(out), 'second', len(second))


def _write_fields(path, rows):
    with open(path, 'w') as handle:
        for r in rows:
            handle.write(json.dumps({key: r[key] for key in POOL_FIELDS}) + '\n')


# ---- merging a round ------------------------------------------------------------------------


def checked(row):
    from pipeline.core.families import CODES, NONE

    labels = row['labels']
    assert labels and all(code in CODES or code == NONE for code in labels), row
    assert NONE not in labels or labels == [NONE], row
    return labels


def kappa(first, second):
    first, second = np.asarray(first, float), np.asarray(second, float)
    observed = np.mean(first == second)
    expected = first.mean() * second.mean() + (1 - first.mean()) * (1 - second.mean())
    return 1.0 if expected == 1 else round(float((observed - expected) / (1 - expected)), 3)


def agreement(first: dict, second: dict, round_number: int) -> dict:
    from pipeline.core.families import CODES, NONE

    ids = sorted(second)
    result = {'round': round_number, 'papers': len(ids),
              'exact_set': round(float(np.mean([set(first[i]) == set(second[i]) for i in ids])), 4),
              'kappa': {}}
    for code in (*CODES, NONE):
        result['kappa'][code] = kappa([code in first[i] for i in ids], [code in second[i] for i in ids])
    result['disagreements'] = [{'arxiv_id': i, 'first': first[i], 'second': second[i]}
                               for i in ids if set(first[i]) != set(second[i])]
    return result


def merge_round(folder: Path, labelers: int, round_number: int, settled: dict[str, list[str]]):
    """Check the labelers' files, append the round to ``families_read.jsonl`` (train split),
    embed its papers into ``families_embeddings.npz`` and write the second reader's agreement
    to ``bench/labeling/fam_agreement_roundN.json``. With ``--check``: print the
    disagreements only (to settle them by re-reading before the merge)."""
    sys.path.insert(0, '.')
    meta = read_jsonl(folder / 'pool_meta.jsonl')
    labels = {}
    for k in range(labelers):
        pool = [row['arxiv_id'] for row in read_jsonl(folder / f'pool{k}.jsonl')]
        answered = {row['arxiv_id']: row for row in read_jsonl(folder / f'labels{k}.jsonl')}
        assert set(pool) == set(answered), f'labels{k}: {len(set(pool) - set(answered))} missing'
        labels.update(answered)
    second = {row['arxiv_id']: checked(row) for row in read_jsonl(folder / 'second_labels.jsonl')}
    first = {i: checked(row) for i, row in labels.items()}
    found = agreement(first, second, round_number)
    if '--check' in sys.argv:
        print(json.dumps(found, indent=1))
        return
    Path(f'bench/labeling/fam_agreement_round{round_number}.json').write_text(json.dumps(found) + '\n')
    rows = [_read_row(row, labels[row['arxiv_id']], settled, second) for row in meta]
    with open(DATA / 'families_read.jsonl', 'a') as handle:
        for row in rows:
            handle.write(json.dumps(row) + '\n')
    _embed(rows)
    print(json.dumps({k: v for k, v in found.items() if k != 'disagreements'}))
    print(len(found['disagreements']), 'disagreements;', len(rows), 'rows appended')


def _read_row(row, answer, settled, second):
    final = settled.get(row['arxiv_id'], answer['labels'])
    return {**{key: row[key] for key in ('arxiv_id', 'title', 'abstract', 'categories', 'listed_date')},
            'labels': final, 'primary_label': final[0],
            'doubtful': bool(answer.get('doubtful')) or row['arxiv_id'] in settled,
            'note': answer.get('note', ''), 'selection': row['selection'],
            'query': row['query'] or None, 'split': 'train',
            'second_reader': second.get(row['arxiv_id'])}


def _embed(rows):
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    store = dict(np.load(DATA / 'families_embeddings.npz', allow_pickle=False))
    new = [row for row in rows if row['arxiv_id'] not in set(store['ids'].tolist())]
    vectors = embed_texts([paper_text(r['title'], r['abstract']) for r in new], device='cpu')
    titles = embed_texts([paper_text(r['title'], '') for r in new], device='cpu')
    store['ids'] = np.concatenate([store['ids'], np.array([r['arxiv_id'] for r in new])])
    store['vectors'] = np.vstack([store['vectors'], vectors.astype(np.float16)])
    store['title_vectors'] = np.vstack([store['title_vectors'], titles.astype(np.float16)])
    np.savez_compressed(DATA / 'families_embeddings.tmp.npz', **store)
    (DATA / 'families_embeddings.tmp.npz').replace(DATA / 'families_embeddings.npz')
