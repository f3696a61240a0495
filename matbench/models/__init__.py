"""Model adapters: the ``Model`` interface, the model table and aliases, and a response cache.

Backends (``openai``, ``vllm``, plug-ins) come from ``matbench.registry.MODELS`` and are imported on demand by
``get_model``, so importing this package stays cheap (no openai / vllm / torch import).
"""

from matbench.models.base import ChatRequest, Model, ModelOutput
from matbench.models.registry import ModelAlias, get_model, model_aliases, register_model, resolve_spec

__all__ = [
    "ChatRequest",
    "Model",
    "ModelAlias",
    "ModelOutput",
    "get_model",
    "model_aliases",
    "register_model",
    "resolve_spec",
]
