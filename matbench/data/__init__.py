"""Samples and the loaders that produce them (MAT from the hub or a folder, FlashRAG-format multi-hop sets)."""

from matbench.data.sample import Sample

__all__ = ["Sample"]
