"""A run from plan to finish: the option declarations, the plan (config, fingerprint, run directory),
the scheduler and episodes, the run lock, shards and merge, and where the time went."""
