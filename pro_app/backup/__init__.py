"""Backups: consistent online snapshots, checked, compressed and encrypted to an age key.

snapshot.py copies and checks a database, crypto.py seals and opens the copy, manifest.py
names the files and writes the manifest, retention.py decides what to keep, and jobs.py
puts them together for the commands (pro_app/cli/backup.py). No Flask here.
"""
