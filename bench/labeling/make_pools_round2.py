"""Round 2 of family labeling (issue 13): 349 more targeted papers for the rare families
and the traps, all in the train split. Selection only (seeded keyword search); the labels
come from reading, by two labelers given ``fam_prompt.txt`` with the rules verbatim, and a
blind second reader on a random 35. Run from the repository root with ../shared beside it."""
import json
import random

from rounds import draw_targeted, read_jsonl, unlabeled_listings

ROUND_ONE = 1590  # the first rows of families_read.jsonl; round 2 was appended after them
read = {row['arxiv_id'] for row in read_jsonl('pipeline/data/families_read.jsonl')[:ROUND_ONE]}
rows = unlabeled_listings(read)
rng = random.Random(2026113003)
queries = [
    ('slm', r'\bspeech\b|\bspoken\b|audio language model|\bASR\b|\bTTS\b|text[- ]to[- ]speech'
            r'|speech LLM|audio LLM', 55),
    ('moe', r'mixture[- ]of[- ]experts|\bMoE\b', 40),
    ('sam', r'segment anything|\bSAM ?2\b|\bMedSAM\b|\bSAM\b', 40),
    ('mlm', r'\bBERT\b|masked language model|masked diffusion|encoder[- ]only|\bRoBERTa\b|\bModernBERT\b'
            r'|diffusion language model', 45),
    ('lam', r'open[- ]vocabulary|referring (expression|segmentation)|visual grounding'
            r'|text[- ]video retrieval|\bCLIP\b', 40),
    ('lcm', r'text[- ]to[- ](image|video|3d|motion)|vision[- ]language[- ]action|\bVLA\b'
            r'|instruction[- ](guided|based) (image )?editing', 30),
    ('llm-applied', r'\b(large language models?|LLMs?)\b.*'
                    r'\b(user study|participants|agent|simulation|benchmark|evaluat)', 30),
    ('trap-experts-not-moe', r'\bexperts?\b', 15), ('trap-named-sam', r'\b\w+-SAM\b|\bSAM-\w+', 10),
    ('trap-hate-speech', r'hate speech', 10),
    ('trap-masked-image', r'masked image model|masked autoencoder|\bMAE\b', 10),
    ('trap-rl-actions', r'reinforcement learning.*\b(action|policy)\b|\brobot\w* (policy|manipulation)\b', 10),
    ('trap-token-routing', r'\b(token routing|router|routing)\b', 10), ('trap-sharpness', r'sharpness[- ]aware', 5)]
out = draw_targeted(rows, rng, queries, set(), selection=None)
rng.shuffle(out)
with open('family_pool_round2.jsonl', 'w') as handle:
    for r in out:
        handle.write(json.dumps(r) + '\n')
print('total', len(out))
