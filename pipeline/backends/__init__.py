"""Summary backends, one small module each: ``extractive`` (the embedded default),
``hf`` (transformers + torch; the only module importing transformers' generation) and
``openai`` (any OpenAI-compatible server). ``pipeline.summarize.make_summarizer`` picks one."""
