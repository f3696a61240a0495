"""``constant:TEXT``: a model backend that answers TEXT to every question at once (the "always yes"
baseline of a yes/no task), in process: no endpoint, no key."""

from typing import Any

from matbench.models.base import ChatRequest, Model, ModelOutput


class ConstantModel(Model):
    OPTIONS = frozenset({"max_concurrency"})  # the eval options it takes; the rest go to other backends
    lockstep = False

    def __init__(self, model_id: str, *, display_name: str | None = None, requested_backend: str = "constant",
                 max_concurrency: int = 32) -> None:
        self.text = model_id
        self.name = display_name or f"constant:{model_id}"
        self.max_concurrency = max(1, int(max_concurrency))

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        return [ModelOutput(text=f"<think> Always the same. </think>\n<answer> {self.text} </answer>",
                            finish_reason="stop") for _ in requests]

    def config(self) -> dict[str, Any]:
        # what config.json records (and the fingerprint tells apart): another TEXT is another model
        return {"backend": "constant", "model": self.text, "decoding": "none: a constant answer"}
