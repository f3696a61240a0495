"""`matbench eval`: run a model on one or more tasks as multi-turn tool-using episodes."""

from __future__ import annotations

import argparse
import json
import signal
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on tasks",
        description="Run every sample of each task as a tool-using episode, score it, and leave a resumable "
        "run directory (runs/<utc>_<model>_<task>/). Rerunning the same command resumes.",
    )
    p.add_argument(
        "--model", required=True, help="alias (see `matbench models`), openai:NAME or vllm:PATH_OR_HUB_ID"
    )
    p.add_argument(
        "--task", action="append", required=True, help="task name; repeat for several (one model load)"
    )
    p.add_argument("--data-dir", help="local data folder instead of the hub")
    p.add_argument("--data-file", help="local data file instead of the hub")
    p.add_argument(
        "--data-revision",
        help="hub commit of the task data (default: the task spec's pin; recorded in config)",
    )
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--ids", help="comma-separated sample ids, e.g. 1,5,9")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="only shard I of N (I from 0), a fixed slice by sample-id hash; `matbench merge` joins the shards",
    )
    p.add_argument(
        "--protocol",
        help="visual-arft (default: the authors' exact strings), direct (their no-tool baseline), "
        "matbench-wording or matbench-wording-direct (matbench's own wording, no copy of the authors' scripts needed), "
        "tools (native function calling, API models: see README)",
    )
    p.add_argument("--protocol-file", help="a YAML/JSON file replacing every prompt template")
    p.add_argument(
        "--authors-repo",
        help="a copy of Liuziyu77/Visual-RFT (the folder holding Visual-ARFT/) to read the authors' strings from "
        "(default $MATBENCH_AUTHORS_REPO, else the cache, else one download at the pinned commit)",
    )
    p.add_argument(
        "--compat",
        choices=["fixed", "strict"],
        default="fixed",
        help="fixed (default): the documented fixes of the authors' failure handling; strict: their handling too",
    )
    p.add_argument("--scoring", choices=["visual-arft", "squad"], help="default: the task's (visual-arft)")
    p.add_argument(
        "--search",
        default="serper",
        help="search backend: serper (needs SERPER_API_KEY), local:INDEX_DIR, retriever:URL (default serper)",
    )
    p.add_argument(
        "--search-cache",
        choices=["auto", "off", "read", "readwrite"],
        default="auto",
        help="read replays a run offline from the cache; auto (default): readwrite, but off for local BM25",
    )
    p.add_argument(
        "--cache-dir",
        help="search and response caches, the authors' scripts (default $MATBENCH_CACHE_DIR or ~/.cache/matbench)",
    )
    p.add_argument(
        "--no-response-cache", action="store_true", help="do not reuse cached deterministic responses"
    )
    p.add_argument(
        "--base-url",
        action="append",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for `vllm serve`; repeat for replicas "
        "of the same model (each call goes to the one with the fewest in flight; a failing one is drained)",
    )
    p.add_argument("--api-key-env", help="environment variable holding the API key (default OPENAI_API_KEY)")
    p.add_argument("--max-concurrency", type=int, default=32, help="model calls in flight (default 32)")
    p.add_argument(
        "--lockstep-window",
        type=int,
        default=1024,
        help="in-process vLLM: episodes alive at once, batched together each round (default 1024)",
    )
    p.add_argument("--max-retries", type=int, help="retries per model call on 429/5xx/timeouts (default 6)")
    p.add_argument("--retry-delay", type=float, help="base seconds of the exponential backoff (default 1)")
    p.add_argument("--temperature", type=float, help="default: 0 for API models, the checkpoint's for vLLM")
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-new-tokens", type=int, help="tokens per model call (default: the task's limit)")
    p.add_argument(
        "--no-crop-assist", action="store_true", help="do not rewrite crop slices to the question's box"
    )
    p.add_argument(
        "--code-timeout", type=float, help="seconds per sandboxed code run (default 60; the authors had none)"
    )
    p.add_argument(
        "--exec-scope",
        choices=["authors", "fresh"],
        help="authors (default with their strings): exec(code, globals-with-their-imports, locals) as their "
        "script did; fresh: one new namespace per snippet",
    )
    p.add_argument("--sandbox-workers", type=int, default=2, help="warm sandbox workers (default 2)")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run model code even without bubblewrap isolation (recorded; the run is not official)",
    )
    p.add_argument("--run-dir", help="run directory (with several tasks: their parent)")
    p.add_argument("--runs-root", default="runs", help="where new run directories go (default runs/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run instead of resuming it")
    p.add_argument(
        "--retry-errors", action="store_true", help="rerun only the samples that ended in an API error"
    )
    p.add_argument(
        "--api",
        choices=["chat", "responses"],
        help="OpenAI API shape (default: responses for reasoning models o1/o3/o4/gpt-5, else chat)",
    )
    p.add_argument(
        "--reasoning-effort", choices=["minimal", "low", "medium", "high"], help="reasoning models only"
    )
    p.add_argument("--prices", help="a price table (YAML) adding to or replacing the shipped one")
    p.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="start no new sample once the run has spent this much (finished samples kept; resumable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summaries as one JSON list on stdout")
    g = p.add_argument_group("vLLM (in-process)")
    g.add_argument("--tensor-parallel-size", type=int)
    g.add_argument("--data-parallel-size", type=int)
    g.add_argument("--max-model-len", type=int)
    g.add_argument("--gpu-memory-utilization", type=float)
    g.add_argument("--max-pixels", type=int)
    g.add_argument("--dtype", help="weights/activations dtype (auto, float32, bfloat16...; CPU: float32)")
    g.add_argument("--enforce-eager", action="store_true", default=None, help="no CUDA graphs / compilation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.cost import cost_text
    from matbench.display import score_table
    from matbench.errors import ConfigError
    from matbench.models.registry import default_temperature
    from matbench.runner import EvalSettings, evaluate

    if args.max_pixels is not None and args.base_url:
        raise ConfigError(
            "--max-pixels cannot be applied to a model behind --base-url (the server's image processor decides); "
            "start the server with it instead, e.g. vllm serve ... --mm-processor-kwargs '{\"max_pixels\": N}'"
        )
    temperature = args.temperature
    if temperature is None:  # the backend's default (API models: greedy; reasoning models and vLLM: theirs)
        temperature = default_temperature(args.model, args.base_url)
    settings = EvalSettings(
        model=args.model,
        tasks=args.task,
        data_dir=args.data_dir,
        data_file=args.data_file,
        data_revision=args.data_revision,
        limit=args.limit,
        ids=[i.strip() for i in args.ids.split(",") if i.strip()] if args.ids else None,
        protocol=args.protocol,
        protocol_file=args.protocol_file,
        authors_repo=args.authors_repo,
        compat=args.compat,
        search=args.search,
        search_cache=args.search_cache,
        cache_dir=args.cache_dir,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        max_concurrency=args.max_concurrency,
        lockstep_window=args.lockstep_window,
        run_dir=args.run_dir,
        runs_root=args.runs_root,
        overwrite=args.overwrite,
        retry_errors=args.retry_errors,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        temperature=temperature,
        top_p=args.top_p,
        scoring=args.scoring,
        crop_assist=False if args.no_crop_assist else None,
        code_timeout=args.code_timeout,
        exec_scope=args.exec_scope,
        sandbox_workers=args.sandbox_workers,
        unsafe_no_sandbox=args.unsafe_no_sandbox,
        response_cache=not args.no_response_cache,
        model_options={
            k: v
            for k, v in {
                "tensor_parallel_size": args.tensor_parallel_size,
                "data_parallel_size": args.data_parallel_size,
                "max_model_len": args.max_model_len,
                "gpu_memory_utilization": args.gpu_memory_utilization,
                "max_pixels": args.max_pixels,
                "dtype": args.dtype,
                "enforce_eager": args.enforce_eager,
                "max_retries": args.max_retries,
                "retry_base_delay": args.retry_delay,
                "api": args.api,
                "reasoning_effort": args.reasoning_effort,
            }.items()
            if v is not None
        },
        progress=not args.no_progress and not args.json,
        shard=args.shard,
        prices=args.prices,
        max_cost=args.max_cost,
    )
    # SIGTERM (a batch scheduler, `kill`) stops a run exactly as Ctrl-C does: finished samples are on disk,
    # the run directory's lock is released and one line is printed. It goes through SIGINT's handler, which
    # a background job (`matbench eval ... &` in a script, some schedulers) inherits as ignored: then
    # SIGTERM would do nothing at all, so Python's default handler is put back first.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    summaries = evaluate(settings)
    if args.json:
        print(json.dumps(summaries))
        return _exit_code(summaries)
    for s in summaries:
        run = s["run"]
        print(score_table(s))
        print(
            f"errors={run['errors']} input_errors={run['input_errors']} calls={run['calls']} "
            f"cache_hits={(run.get('response_cache') or {}).get('hits', 0)} "
            f"tool_calls={run['tool_calls']} tool_errors={run['tool_errors']} "
            f"finished={run['finished']} time={run['duration_s']}s"
        )
        tokens = " ".join(f"{k}={v}" for k, v in run["tokens"].items())
        print(f"tokens: {tokens}  cost: {cost_text(run.get('cost'))}")
        if run.get("max_cost") and run["max_cost"]["not_started"]:
            mc = run["max_cost"]
            print(
                f"stopped by --max-cost ${mc['limit_usd']:g}: spent ${mc['spent_usd']:.4f}, "
                f"{mc['not_started']} sample(s) not started; rerun with a higher --max-cost to resume"
            )
        print(f"run directory: {run['run_dir']}\n", file=sys.stdout)
    return _exit_code(summaries)


def _exit_code(summaries: list[dict]) -> int:
    """1 when samples ended in API errors (after saying how to rerun just those), else 0."""
    errors = sum(s["run"]["errors"] for s in summaries)
    if not errors:
        return 0
    print(
        f"matbench: {errors} sample{'s' if errors != 1 else ''} ended in API errors; rerun them with the "
        "same command plus --retry-errors",
        file=sys.stderr,
    )
    return 1
