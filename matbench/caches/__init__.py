"""Cache stores (one SQLite connection per process and file), their admin (info, prune) and where they live."""
