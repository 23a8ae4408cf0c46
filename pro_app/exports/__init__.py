"""Exports for data managers: the export model, variables, CSV writers and the codebook.

Everything here is pure (no Flask, no SQL) except `source.py`, which reads the database.
"""
