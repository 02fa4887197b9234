"""Round 3 of family labeling (issue 13): 600 more papers for the train split — 300 drawn at
random from the daily listings (so the none-rate stays real) and 300 found by keyword search
for the families the held-out split showed weakest (VLM, LAM, LCM, MLM, MoE, applied LLM
studies) and their traps. Selection only (seeded); the labels come from reading, by four
labelers given ``fam_prompt.txt`` with the rules and the README's clarifications verbatim,
and a blind second reader on 60 random ones. No held-out paper can be drawn (every labeled
id is excluded). Run from the repository root with ../shared beside it."""
import json
import lzma
import random
import re

SHARED = '../shared'
LISTINGS = SHARED + '/data/arxiv_listings_cs_2025_2026.jsonl.xz'
rows = [json.loads(line) for line in lzma.open(LISTINGS, 'rt')]
dev = {json.loads(line)['arxiv_id'] for line in open(SHARED + '/data/labeled_dev.jsonl')}
weak = {json.loads(line)['arxiv_id'] for line in open('pipeline/data/families_labeled.jsonl')}
read = {json.loads(line)['arxiv_id'] for line in open('pipeline/data/families_read.jsonl')}
rows = [r for r in rows if r['id'] not in dev | weak | read and (r.get('abstract') or '').strip()]
rng = random.Random(2026113004)
queries = [
    ('vlm', r'multimodal (large )?language model|\bMLLMs?\b|\bLVLMs?\b|vision[- ]language model'
            r'|visual question answering|\bVQA\b|caption', 60),
    ('lam', r'open[- ]vocabulary|referring (expression|segmentation)|visual grounding|grounding'
            r'|text[- ]video retrieval|\bCLIP\b|zero-shot (classification|segmentation|detection)', 55),
    ('lcm', r'text[- ]to[- ](image|video|3d|motion)|vision[- ]language[- ]action|\bVLA\b'
            r'|(image|video) editing|language[- ]conditioned|text[- ]guided', 45),
    ('mlm', r'\bBERT\b|masked language model|masked diffusion|encoder[- ]only|\bRoBERTa\b'
            r'|\bModernBERT\b|diffusion language model|sentence (embedding|encoder)', 45),
    ('moe', r'mixture[- ]of[- ]experts|\bMoE\b', 25),
    ('llm-applied', r'\b(large language models?|LLMs?|ChatGPT|GPT-4o?)\b', 40),
    ('trap-clip-called-vlm', r'vision[- ]language model.*\bCLIP\b|\bCLIP\b.*vision[- ]language model', 10),
    ('trap-masked-image', r'masked image model|masked autoencoder|\bMAE\b', 10),
    ('trap-class-conditional', r'class[- ]conditional|unconditional (image )?generation', 10)]
out, taken = [], set()
for r in rng.sample(rows, 300):
    taken.add(r['id'])
    out.append(dict(arxiv_id=r['id'], title=r['title'], abstract=r['abstract'],
                    categories=r['categories'], listed_date=r.get('listed_date'),
                    selection='random', query=''))
for name, pattern, count in queries:
    regex = re.compile(pattern, re.I | re.S)
    hits = [r for r in rows if r['id'] not in taken and regex.search(r['title'] + ' ' + r['abstract'])]
    for r in rng.sample(hits, min(count, len(hits))):
        taken.add(r['id'])
        out.append(dict(arxiv_id=r['id'], title=r['title'], abstract=r['abstract'],
                        categories=r['categories'], listed_date=r.get('listed_date'),
                        selection='targeted', query=name))
rng.shuffle(out)
with open('/work/labeling3/pool_meta.jsonl', 'w') as handle:
    for r in out:
        handle.write(json.dumps(r) + '\n')
for k in range(4):
    with open(f'/work/labeling3/pool{k}.jsonl', 'w') as handle:
        for r in out[k::4]:
            handle.write(json.dumps({key: r[key] for key in ('arxiv_id', 'title', 'abstract', 'categories')}) + '\n')
second = rng.sample([r for r in out if r['selection'] == 'random'], 60)
with open('/work/labeling3/second_pool.jsonl', 'w') as handle:
    for r in second:
        handle.write(json.dumps({key: r[key] for key in ('arxiv_id', 'title', 'abstract', 'categories')}) + '\n')
print('total', len(out), 'second', len(second))
