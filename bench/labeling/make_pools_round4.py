"""Round 4 of family labeling (issue 13): 1,050 more papers for the train split — 325 drawn at
random from the daily listings (so the none-rate stays real) and 725 found by keyword search,
weighted to the families with the lowest F1 in BENCHMARKS.md (MLM, LAM, VLM, MoE, LCM; the
same choice as round 3) and to every trap the rules name. Selection only (seeded); the labels
come from reading, by seven labelers given ``fam_prompt.txt`` with the rules and the README's clarifications verbatim,
and a blind second reader on a random 10 %. No held-out paper can be drawn (every labeled id
is excluded). Run from the repository root with ../shared beside it."""
import random

from rounds import draw_random, draw_targeted, unlabeled_listings, write_pools

FOLDER = '/work/labeling4'
LABELERS = 7
rows = unlabeled_listings()
rng = random.Random(2026120104)
queries = [
    ('mlm', r'\bBERT\b|masked language model|masked diffusion|encoder[- ]only|\bRoBERTa\b|\bDeBERTa'
            r'|\bModernBERT\b|diffusion language model|sentence (embedding|encoder)|text encoder', 110),
    ('lam', r'open[- ]vocabulary|referring (expression|segmentation|image)|visual grounding|grounding'
            r'|text[- ](video|image) retrieval|\bCLIP\b|zero-shot (classification|segmentation|detection)'
            r'|prompt (learning|tuning)', 110),
    ('vlm', r'multimodal (large )?language model|\bMLLMs?\b|\bLVLMs?\b|vision[- ]language model'
            r'|visual question answering|\bVQA\b|caption|video understanding|report generation', 100),
    ('lcm', r'text[- ]to[- ](image|video|3d|motion|audio)|vision[- ]language[- ]action|\bVLA\b'
            r'|(image|video) editing|language[- ]conditioned|text[- ]guided|text[- ]driven', 90),
    ('moe', r'mixture[- ]of[- ]experts|\bMoE\b|experts', 70),
    ('sam', r'segment anything|\bSAM\s?[123]?\b|MedSAM', 50),
    ('slm', r'\bspeech\b|spoken|\bASR\b|\bTTS\b|audio language|audio[- ]LLM', 50),
    ('llm-applied', r'\b(large language models?|LLMs?|ChatGPT|GPT-4o?|language agents?)\b', 70),
    ('trap-sharpness', r'sharpness[- ]aware', 10),
    ('trap-masked-image', r'masked image model|masked autoencoder|\bMAE\b', 10),
    ('trap-clip-called-vlm', r'vision[- ]language model.*\bCLIP\b|\bCLIP\b.*vision[- ]language model', 10),
    ('trap-token-routing', r'token routing|routing tokens|router|mixture[- ]of[- ](depths|transformers)', 10),
    ('trap-hate-speech', r'hate speech|toxic speech|offensive speech', 10),
    ('trap-class-conditional', r'class[- ]conditional|unconditional (image )?generation', 10),
    ('trap-rl-actions', r'reinforcement learning.*\baction', 10),
    ('trap-named-sam', r'\b\w+-SAM\b', 15)]
taken: set[str] = set()
out = draw_random(rows, rng, 325, taken)
out += draw_targeted(rows, rng, queries, taken)
rng.shuffle(out)
write_pools(FOLDER, out, LABELERS, rng.sample(out, len(out) // 10))
