"""Storage: SQLite through sqlite-utils (migrations, transactions, audit chain)."""
