"""`matbench models`: list the model aliases with their backend and hub id / model name."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the model aliases",
        description=(
            "List the model aliases. Any other model: openai:NAME (OpenAI or, with --base-url, any "
            "OpenAI-compatible server), vllm:PATH_OR_HUB_ID (in-process vLLM on a GPU) or scripted:FILE (replays "
            "a script of replies in process: a dry run with no endpoint, key or GPU). A vllm model "
            "given with --base-url is queried over HTTP, e.g. against `vllm serve HUB_ID`."
        ),
    )
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.models.registry import MODEL_ALIASES, ModelAlias
    from matbench.models.scripted import shipped_scripts

    aliases = list(MODEL_ALIASES.values()) + [
        ModelAlias(f"scripted:{name}", "scripted", path.name, "dry run: replays a shipped script; no key, no GPU")
        for name, path in shipped_scripts().items()
    ]
    if args.json:
        print(
            json.dumps(
                [
                    {"alias": a.name, "backend": a.backend, "model_id": a.model_id, "notes": a.notes}
                    for a in aliases
                ],
                indent=2,
            )
        )
        return 0
    headers = ["alias", "backend", "model id", "notes"]
    rows = [[a.name, a.backend, a.model_id, a.notes] for a in aliases]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    print("\n".join(lines))
    print(
        "\nother models: openai:NAME, vllm:PATH_OR_HUB_ID, scripted:FILE (a YAML/JSON script of replies); with "
        "--base-url a vllm model is queried over the OpenAI protocol (e.g. `vllm serve Qwen/Qwen2.5-VL-7B-Instruct`)"
    )
    return 0
