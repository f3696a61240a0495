"""Tools that agents call during an episode (code sandbox, search backends)."""
