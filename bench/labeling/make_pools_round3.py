"""Round 3 of family labeling (issue 13): 600 more papers for the train split — 300 drawn at
random from the daily listings (so the none-rate stays real) and 300 found by keyword search
for the families the held-out split showed weakest (VLM, LAM, LCM, MLM, MoE, applied LLM
studies) and their traps. Selection only (seeded); the labels come from reading, by four
labelers given ``fam_prompt.txt`` with the rules and the README's clarifications verbatim,
and a blind second reader on 60 random ones. No held-out paper can be drawn (every labeled
id is excluded). Run from the repository root with ../shared beside it."""
import random

from rounds import draw_random, draw_targeted, unlabeled_listings, write_pools

FOLDER = '/work/labeling3'
LABELERS = 4
rows = unlabeled_listings()
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
taken: set[str] = set()
out = draw_random(rows, rng, 300, taken)
out += draw_targeted(rows, rng, queries, taken)
rng.shuffle(out)
write_pools(FOLDER, out, LABELERS, rng.sample([r for r in out if r['selection'] == 'random'], 60))
