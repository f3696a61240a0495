"""`matbench models`: the model table (matbench/data/models.yaml): aliases, capabilities and prices."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the model table: aliases, capabilities, prices",
        description=(
            "List the models matbench knows (matbench/data/models.yaml): alias, backend, model id, API shape, "
            "reasoning, image input, native tool calls, output-token limit and the price per 1M input / cached "
            "input / output tokens with the date it was checked. Any other model: openai:NAME (OpenAI or, with "
            "--base-url, any OpenAI-compatible server; Chat Completions defaults), vllm:PATH_OR_HUB_ID "
            "(in-process vLLM on a GPU) or scripted:FILE (replays a script of replies in process: a dry run with "
            "no endpoint, key or GPU). A vllm model given with --base-url is queried over HTTP, e.g. against "
            "`vllm serve HUB_ID`."
        ),
    )
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")
    p.set_defaults(func=run)


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def run(args: argparse.Namespace) -> int:
    from matbench.models.capabilities import table
    from matbench.models.registry import alias_notes
    from matbench.models.scripted import shipped_scripts
    from matbench.registry import MODELS

    t = table()
    rows = list(t.rows.values())
    scripted = {f"scripted:{name}": path.name for name, path in shipped_scripts().items()}
    dry_run = "dry run: replays a shipped script; no key, no GPU"
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "alias": r.alias,
                        "backend": r.backend,
                        "model_id": r.id,
                        "provider": r.provider,
                        "base_url": t.providers[r.provider].base_url if r.provider else None,
                        "api_key_env": t.providers[r.provider].api_key_env if r.provider else None,
                        "api": r.api,
                        "reasoning": r.reasoning,
                        "images": r.images,
                        "tools": r.tools,
                        "max_output_tokens": r.max_output_tokens,
                        "price_per_1m": (
                            dict(zip(("input", "cached_input", "output"), r.price, strict=True))
                            if r.price
                            else None
                        ),
                        "checked": r.checked,
                        "source": r.source,
                        "architecture": r.architecture,
                        "notes": alias_notes(r),
                    }
                    for r in rows
                ]
                + [
                    {"alias": alias, "backend": "scripted", "model_id": file, "notes": dry_run}
                    for alias, file in scripted.items()
                ],
                indent=2,
            )
        )
        return 0
    headers = ["alias", "backend", "model id", "api", "reasoning", "images", "tools", "max out",
               "$/1M in / cached / out", "checked"]
    body = [
        [
            r.alias or "-",
            r.backend + (f" ({r.provider})" if r.provider and r.provider != "openai" else ""),
            r.id,
            r.api,
            _yn(r.reasoning),
            _yn(r.images),
            _yn(r.tools),
            f"{r.max_output_tokens:,}" if r.max_output_tokens else "-",
            r.price_text(),
            r.checked,
        ]
        for r in rows
    ] + [[alias, "scripted", file, "-", "-", "yes", "yes", "-", "no calls (dry run)", "-"]
         for alias, file in scripted.items()]
    widths = [max(len(str(x[i])) for x in [headers, *body]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    print("\n".join(lines))
    hosted = ", ".join(f"{p.name}: {p.base_url} (${p.api_key_env})" for p in t.providers.values())
    print(
        f"\nendpoints: {hosted}\n"
        f"backends: {', '.join(MODELS.names())}; other models: openai:NAME (Chat Completions defaults when not "
        "in the table), vllm:PATH_OR_HUB_ID, scripted:FILE (a YAML/JSON script of replies); with --base-url a vllm model is queried over the OpenAI protocol "
        "(e.g. `vllm serve Qwen/Qwen2.5-VL-7B-Instruct`). Prices: `unknown price` where none is published; "
        "sources in `matbench models --json`."
    )
    return 0
