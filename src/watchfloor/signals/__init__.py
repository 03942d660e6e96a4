"""Signals: language, sentiment, toxicity, near-duplicates and bursts for ranking alerts."""
