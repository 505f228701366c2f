"""AI assistance for leads.

`leadflow.ai.local` is the offline provider: deterministic, rule-based keyword matching and
templates (no language model, no network, no database). It analyses leads, drafts messages,
summarises histories and answers simple chat questions.
"""
