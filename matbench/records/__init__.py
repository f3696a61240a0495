"""Run records: the run directory (config, predictions, summary, images by content), reading predictions
files, and the running totals a summary is made of."""
