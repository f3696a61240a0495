"""matbench: evaluate vision-language models as tool-using agents on MAT and multi-hop QA."""

__version__ = "0.1.0"
