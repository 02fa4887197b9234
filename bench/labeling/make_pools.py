"""Build the labeling pools for issues 13 and 14 from ../shared/data (development only).
Selection (which papers get read) uses a seeded random draw and keyword search; the labels
come from reading, not from these patterns."""
import json
import lzma
import random
import re

SHARED = '../shared'  # run from the repository root, with ../shared beside it
rows = [json.loads(line) for line in lzma.open(SHARED + '/data/arxiv_listings_cs_2025_2026.jsonl.xz', 'rt')]
dev = {json.loads(line)['arxiv_id'] for line in open(SHARED + '/data/labeled_dev.jsonl')}
weak = {json.loads(line)['arxiv_id'] for line in open('pipeline/data/families_labeled.jsonl')}
rows = [r for r in rows if r['id'] not in dev and (r.get('abstract') or '').strip()]
rng = random.Random(20261130)
pool = [r for r in rows if r['id'] not in weak]
random_draw = rng.sample(pool, 1050)
taken = {r['id'] for r in random_draw}
out = []
for i, r in enumerate(random_draw):
    out.append(dict(r, selection='random', split='heldout' if i < 350 else 'train', query=None))
queries = [  # (name, regex on title+abstract, how many)
 ('llm-applied', r'\b(large language models?|LLMs?)\b.*\b(user study|participants|agent|simulation|benchmark|evaluat)', 45),
 ('moe', r'mixture[- ]of[- ]experts|\bMoE\b', 45),
 ('trap-token-routing', r'\b(token routing|router|routing)\b', 25),
 ('trap-experts-not-moe', r'\bexperts?\b', 15),
 ('vlm', r'multimodal large language|\bMLLMs?\b|visual question answering|\bcaptioning\b|\bLVLMs?\b', 45),
 ('trap-clip-called-vlm', r'\bCLIP\b.*vision[- ]language model|vision[- ]language models?.*\bCLIP\b', 25),
 ('lam', r'open[- ]vocabulary|referring (expression|segmentation)|visual grounding|text[- ]video retrieval|\bCLIP\b', 45),
 ('lcm', r'text[- ]to[- ](image|video|3d|motion)|vision[- ]language[- ]action|\bVLA\b|instruction[- ](guided|based) (image )?editing', 45),
 ('trap-class-conditional', r'class[- ]conditional|unconditional (image )?generation', 20),
 ('trap-rl-actions', r'reinforcement learning.*\b(action|policy)\b|\brobot\w* (policy|manipulation)\b', 20),
 ('sam', r'segment anything|\bSAM ?2\b|\bMedSAM\b|\bSAM\b', 45),
 ('trap-sharpness', r'sharpness[- ]aware', 20),
 ('trap-named-sam', r'\b\w+-SAM\b|\bSAM-\w+', 15),
 ('slm', r'\bspeech\b|\bspoken\b|audio language model|\bASR\b|\bTTS\b|text[- ]to[- ]speech', 45),
 ('trap-hate-speech', r'hate speech', 20),
 ('mlm', r'\bBERT\b|masked language model|masked diffusion|encoder[- ]only|\bRoBERTa\b|\bModernBERT\b', 45),
 ('trap-masked-image', r'masked image model|masked autoencoder|\bMAE\b', 20),
]
for name, pattern, n in queries:
    rx = re.compile(pattern, re.I | re.S)
    hits = [r for r in rows if r['id'] not in taken and rx.search(r['title'] + ' ' + r['abstract'])]
    pick = rng.sample(hits, min(n, len(hits)))
    print(name, len(hits), len(pick))
    for r in pick:
        taken.add(r['id'])
        out.append(dict(r, selection='targeted', split='train', query=name))
rng.shuffle(out)
with open('family_pool.jsonl', 'w') as f:
    for r in out:
        f.write(json.dumps(r) + '\n')
print('total', len(out))
