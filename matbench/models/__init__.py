"""Model adapters: the ``Model`` interface, a registry with aliases, and a response cache.

Backends (``openai``, ``vllm``) are imported on demand by ``get_model`` so importing this package
stays cheap (no openai / vllm / torch import).
"""

from matbench.models.base import ChatRequest, Model, ModelOutput
from matbench.models.registry import MODEL_ALIASES, ModelAlias, get_model, register_model, resolve_spec

__all__ = [
    "MODEL_ALIASES",
    "ChatRequest",
    "Model",
    "ModelAlias",
    "ModelOutput",
    "get_model",
    "register_model",
    "resolve_spec",
]
