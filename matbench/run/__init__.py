"""Planning a run and the helpers around it (options, outputs)."""
