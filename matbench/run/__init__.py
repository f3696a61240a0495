"""Resolving a run before it starts: the eval option declarations and the run plan (config, fingerprint)."""
