"""Sync: deliver every outbox message to each configured target (REDCap, FHIR, webhook).

The outbox is written in the submit transaction; this package only reads it and keeps each
message's delivery state per target in `sync_deliveries` (see queue.py).
"""
