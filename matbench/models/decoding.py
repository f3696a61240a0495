"""What config.json records about decoding: the request fields an endpoint is sent, or the sampling
parameters an in-process engine applies. Both are built from ``EpisodeOptions.request()``, the same call every
episode turn makes, so the record is what every request carries, not a restatement of the command line.
The backend named in the model config answers (``Model.sent_decoding`` / ``Model.effective_decoding``)."""

from __future__ import annotations

from typing import Any

from matbench.models.base import Model


def _backend(model_config: dict) -> type[Model] | None:
    from matbench.errors import ConfigError
    from matbench.models.registry import backend_class

    try:
        return backend_class(str(model_config.get("backend")))
    except ConfigError:
        return None  # a record of a backend this installation does not have: nothing to add


def sent_decoding(model_config: dict, options: Any) -> dict | None:
    """HTTP backends: the body's fields besides the messages (None for in-process engines)."""
    cls = _backend(model_config)
    return cls.sent_decoding(model_config, options.request()) if cls is not None else None


def effective_decoding(model_config: dict, options: Any) -> dict | None:
    """In-process engines: the ``SamplingParams`` every request gets (None for HTTP backends)."""
    cls = _backend(model_config)
    return cls.effective_decoding(model_config, options.request()) if cls is not None else None
