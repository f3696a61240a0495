"""Protocols: how a task's episode is laid out as text (``visual_arft``: tags, tips, information blocks;
``direct``: one turn). They know tags and text, never HTTP or tools; templates come from ``tasks/prompts``."""
