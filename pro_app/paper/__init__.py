"""Paper back-up forms: layout, display conditions in words, reading and comparing entries.

Pure helpers: no database and no request. The staff pages (pro_app/staff/paper.py) and the
service (pro_app/services/paper.py) use them.
"""
