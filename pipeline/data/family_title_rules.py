"""How the rule-labeled part of ``families_labeled.jsonl`` was made (kept for the record).

    python pipeline/data/family_title_rules.py ../shared/data/arxiv_listings_cs_2025_2026.jsonl.xz OUT.jsonl

1. Pool: 1,200 papers drawn at random (seed 7) from the 74,602 real listings, plus up to 260
   per family whose title matches a broad family pattern (``POOL_PATTERNS``); papers of the
   dev set are left out.
2. Labels from the TITLE only, by the written rules (``../shared/data/README.md``):
   title patterns per family (``RULES``), cancelled by the traps (``TRAPS``: sharpness-aware
   minimization, *-SAM without Segment Anything in the abstract, hate speech, masked image
   modelling, "human experts", multimodal LLMs are not text LLMs, CLIP prompt tuning is LAM
   not VLM, text-guided segmentation/retrieval is LAM not LCM). "none" only when neither title
   nor abstract mentions anything family-like (``BROAD``); every other paper is left out.
   On the 110 dev papers these rules label, they agree exactly with the hand labels on 95.
"""
import json
import lzma
import random
import re
import sys

POOL_PATTERNS = {
    'SAM': r'segment anything|\bsam ?[23]?\b|medsam|sam2|sam-?based',
    'MoE': r'mixture[- ]of[- ]experts|\bmoe\b|experts?\b',
    'SLM': r'speech|audio|spoken|\basr\b|tts|whisper|voice',
    'MLM': r'\bbert\b|roberta|deberta|encoder-only|masked language|diffusion language|masked diffusion|modernbert',
    'LAM': r'\bclip\b|open-vocabulary|grounding|referring|text-to-video retrieval|open-set',
    'LCM': r'text-to-(image|video|3d|motion)|vision-language-action|\bvla\b|image editing|text-guided|text-conditioned',
    'VLM': r'multimodal large language|\bmllm|vision-language model|\bvlm|caption|visual question|video llm|lvlm',
}


def pool(path, dev_ids):
    random.seed(7)
    with lzma.open(path, 'rt') as handle:
        rows = [json.loads(line) for line in handle]
    rows = [r for r in rows if r['id'].split('v')[0] not in dev_ids and r.get('abstract')]
    chosen = {r['id']: r for r in random.sample(rows, 1200)}
    for pattern in POOL_PATTERNS.values():
        matching = [r for r in rows if re.search(pattern, r['title'].lower())]
        random.shuffle(matching)
        chosen.update({r['id']: r for r in matching[:260]})
    return list(chosen.values())


T = lambda p: re.compile(p, re.I)
MM = r"(multi-?modal|vision|visual|video|audio|speech|spoken|omni)"
RULES = {
 'SAM': T(r"segment anything|\bsam ?(2|3|2\.1)?\b(?!-?based optimi)|\bsam[23]\b|medsam|mobilesam|efficientsam|\w+-?sam\b|\bsam-\w+"),
 'MoE': T(r"mixture[- ]of[- ]experts?|\bmoe\b|\w*moe\b|\bmoes\b|\bexperts?\b"),
 'SLM': T(r"\bspeech\b|spoken|\basr\b|text-to-speech|\btts\b|\baudio[- ]language|large audio|audio llm|whisper|wav2vec|hubert|\bvoice\b|speech recognition|\bmusic (understanding|question|llm)"),
 'MLM': T(r"\bbert\b|roberta|deberta|electra\b|modernbert|\w+bert\b|encoder-only|masked language model|diffusion language model|masked diffusion|\bdllms?\b|llada"),
 'LAM': T(r"\bclip\b|open[- ]vocabulary|open[- ]set (detection|segmentation)|visual grounding|\bgrounding\b|referring|text-to-video retrieval|video-text retrieval|text-video retrieval|image-text retrieval|prompt (tuning|learning) for vision"),
 'LCM': T(r"text-to-(image|video|3d|motion)(?! retrieval)|\bt2i\b|\bt2v\b|text-(guided|conditioned)|instruction-(guided|based) (image )?editing|image editing|video editing|vision-language-action|\bvlas?\b|language-conditioned"),
 'VLM': T(r"multi-?modal large language|\bmllms?\b|\blvlms?\b|\bvlms?\b|vision[- ]language models?|video[- ]?llms?|\bvqa\b|visual question|caption|report generation|llava|multi-?modal (llms?|reasoning|large)|qwen[\d.]*-?vl|large multimodal model|\blmms?\b"),
 'LLM': T(r"\bllms?\b|large language models?|\blanguage models?\b|\bgpt|chatgpt|\bllama|jailbreak|\brlhf\b|\bdpo\b|chain-of-thought|reasoning models?|llm-based agent"),
}
TRAPS = {
 'SAM': T(r"sharpness|\bsam\b.{0,40}optimi|optimi.{0,40}\bsam\b"),
 'SLM': T(r"hate[- ]speech|part[s]?[- ]of[- ]speech|speech acts?|free speech|counter-?speech|offensive speech|toxic speech"),
 'MLM': T(r"masked image|masked autoencod|\bmae\b"),
 'MoE': T(r"mixture[- ]of[- ](transformers|depths)|expert (demonstration|knowledge|annotat|feedback|level|human)|human experts?|domain experts?|expert-level|expert-annotated|experts'|panel of experts|expert systems?"),
 'LLM': T(r"multi-?modal large language model|vision[- ]language model|audio language model|speech language model|video language model|diffusion language model"),
}
BROAD = T(r"language model|\bllm|gpt|bert|speech|audio|spoken|clip\b|vision-language|vision language|multimodal|multi-modal|text-to-|segment anything|\bsam\b|expert|caption|question answering|\bvqa|grounding|open-vocabulary|prompt|diffusion|transformer|masked|instruction|chatbot|agent|token|text")

def propose(title, abstract):
    labels = []
    for fam, rx in RULES.items():
        if rx.search(title) and not (fam in TRAPS and TRAPS[fam].search(title)):
            labels.append(fam)
    if 'SAM' in labels and (TRAPS['SAM'].search(abstract) or not re.search(r'segment anything|sam ?[23]|medsam', title + ' ' + abstract, re.I)): labels.remove('SAM')
    if 'LCM' in labels and re.search(r'segment|retriev|detect|grounding', title, re.I) and not re.search(r'text-to-(image|video|3d|motion)|edit|generat', title, re.I):
        labels.remove('LCM')
        if 'LAM' not in labels: labels.append('LAM')
    if 'SLM' in labels and TRAPS['SLM'].search(title + ' ' + abstract) and not re.search(r'spoken|\baudio|\basr\b|acoustic', title+abstract, re.I): labels.remove('SLM')
    # A multimodal LLM in the title is VLM (or SLM), not a text LLM.
    if 'LLM' in labels and ('VLM' in labels or 'SLM' in labels) and not re.search(r'(?<!multimodal )(?<!vision )\bllms?\b.*\b(and|vs)\b', title, re.I):
        if re.search(MM + r"[- ]?(large )?(language models?|llms?)|mllm|lvlm|vlm", title, re.I): labels.remove('LLM')
    if 'LLM' in labels and ('VLM' in labels or 'SLM' in labels): labels.remove('LLM')
    if 'VLM' in labels and re.search(r'prompt (tuning|learning)|\bclip\b', title, re.I) and not re.search(r'mllm|lvlm|large vision|multi-?modal large|caption|vqa|question', title, re.I):
        labels.remove('VLM')
        if 'LAM' not in labels: labels.append('LAM')
    if 'MoE' in labels and not re.search(r"mixture[- ]of[- ]experts?|moe", title + abstract, re.I): labels.remove('MoE')
    if 'MLM' in labels and re.search(r"diffusion language|masked diffusion|dllm|llada", title, re.I) and 'LLM' not in labels and 'VLM' not in labels: labels.append('LLM')
    if labels: return labels
    if not BROAD.search(title + ' ' + abstract): return ['none']
    return None

if __name__ == '__main__':
    dev = {json.loads(line)['arxiv_id'] for line in open(sys.argv[3])} if len(sys.argv) > 3 else set()
    with open(sys.argv[2], 'w') as out:
        for r in pool(sys.argv[1], dev):
            labels = propose(r['title'], r['abstract'] or '')
            if labels is not None:
                out.write(json.dumps({'arxiv_id': r['id'], 'title': ' '.join(r['title'].split()),
                                      'abstract': ' '.join(r['abstract'].split()),
                                      'labels': labels, 'source': 'title-rules',
                                      'listed_date': r.get('listed_date')}) + '\n')
