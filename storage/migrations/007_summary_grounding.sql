-- Fields a model wrote that were not grounded in the paper's title and abstract: their text
-- was replaced by the extractive field (also listed in fallback_fields) or dropped. Older
-- rows had no such check: [] (IF NOT EXISTS: re-applying it changes nothing).
ALTER TABLE summaries ADD COLUMN IF NOT EXISTS ungrounded_fields VARCHAR[] DEFAULT [];
