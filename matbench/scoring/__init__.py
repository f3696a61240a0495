"""Scoring: the scorers (``visual-arft``, ``squad``, ``anls``, plug-ins) behind the SCORERS registry, the
aggregation of per-sample scores, and the one reader that turns a run's records into scores."""
