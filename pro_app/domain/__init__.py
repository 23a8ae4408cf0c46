"""Domain core: definitions, answers, scoring and schedule (no Flask, no SQL)."""
