"""`matbench eval`: run a model on one or more tasks as multi-turn tool-using episodes."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from matbench.run.options import add_eval_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on tasks",
        description="Run every sample of each task as a tool-using episode, score it, and leave a resumable "
        "run directory (runs/<model>_<task>_<key>/, the key a hash of the configuration). Rerunning the same command resumes; a changed configuration is a new run.",
    )
    add_eval_arguments(p)  # every option is declared once, in matbench/run/options.py
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.display import score_table
    from matbench.errors import ConfigError, Interrupted
    from matbench.models.cost import cost_text
    from matbench.run.options import settings_from_args
    from matbench.run.scheduler import evaluate

    if args.max_pixels is not None and args.base_url:
        raise ConfigError(
            "--max-pixels cannot be applied to a model behind --base-url (the server's image processor decides); "
            "start the server with it instead, e.g. vllm serve ... --mm-processor-kwargs '{\"max_pixels\": N}'"
        )
    # --json prints the summaries instead of the table: no progress bar either
    settings = settings_from_args(args, progress=args.progress and not args.json)
    # SIGTERM (a batch scheduler, `kill`) stops a run exactly as Ctrl-C does: finished samples are on disk,
    # the run directory's lock is released and one line is printed. It goes through SIGINT's handler, which
    # a background job (`matbench eval ... &` in a script, some schedulers) inherits as ignored: then
    # SIGTERM would do nothing at all, so Python's default handler is put back first.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        summaries = evaluate(settings)
    except Interrupted as stop:
        print(f"matbench: interrupted: {_saved_text(stop.saved)}; resume with: {resume_command(args.argv)}",
              file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summaries))
        return _exit_code(summaries)
    for s in summaries:
        run = s["run"]
        print(score_table(s))
        print(
            f"errors={run['errors']} input_errors={run['input_errors']} calls={run['calls']} "
            f"cache_hits={(run.get('response_cache') or {}).get('hits', 0)} "
            f"tool_calls={','.join(f'{k}:{v}' for k, v in run['tool_calls'].items()) or 0} "
            f"tool_errors={run['tool_errors']} "
            + (f"no_tool_calls={run['no_tool_calls']} " if "no_tool_calls" in run else "")
            + f"no_answer={run.get('no_answer', 0)} "
            f"finished={run['finished']} time={run['duration_s']}s"
        )
        if run.get("no_tool_hint"):
            print(f"hint: {run['no_tool_hint']}")
        hits = (run.get("response_cache") or {}).get("hits", 0)
        if hits:
            whose = "earlier runs' too (--response-cache)" if args.response_cache else "this run's own, resumed"
            print(f"answers from the response cache: {hits} of {hits + run['response_cache'].get('misses', 0)} "
                  f"cacheable calls ({whose})")
        tokens = " ".join(f"{k}={v}" for k, v in run["tokens"].items())
        print(f"tokens: {tokens}  cost: {cost_text(run.get('cost'))}")
        mc = run.get("max_cost") or {}
        if mc.get("halted"):
            print(f"stopped by --max-cost ${mc['limit_usd']:g}: {mc['halted']}")
        if mc.get("not_started") or mc.get("stopped_in_flight"):
            print(
                f"stopped by --max-cost ${mc['limit_usd']:g}: spent ${mc['spent_usd']:.4f}, "
                f"{mc['not_started']} sample(s) not started, {mc.get('stopped_in_flight', 0)} stopped mid-sample "
                "(not recorded); rerun with a higher --max-cost to resume"
            )
        if s.get("judge"):
            from matbench.judge.summary import judge_lines

            print("\n".join(judge_lines(s["judge"])))
        print(f"run directory: {run['run_dir']}\n", file=sys.stdout)
    return _exit_code(summaries)


def _exit_code(summaries: list[dict]) -> int:
    """1 when samples ended in API errors (after saying how to rerun just those), else 0."""
    errors = sum(s["run"]["errors"] for s in summaries)
    judge_errors = sum((s.get("judge") or {}).get("errors", 0) for s in summaries)
    if judge_errors:
        print(
            f"matbench: {judge_errors} judgment(s) failed on the judge's API; rerun the same command (or "
            "`matbench judge RUN_DIR --judge MODEL`) to judge them again",
            file=sys.stderr,
        )
    if not errors:
        return 1 if judge_errors else 0
    print(
        f"matbench: {errors} sample{'s' if errors != 1 else ''} ended in API errors; rerun them with the "
        "same command plus --retry-errors",
        file=sys.stderr,
    )
    return 1


def _saved_text(saved: list[tuple[str, int, int]]) -> str:
    if not saved:
        return "nothing saved yet"
    return ", ".join(f"{done}/{total} samples saved in {path}" for path, done, total in saved)


def resume_command(argv: list[str]) -> str:
    """The command that resumes this run: the same one, less what would start it over (--overwrite)."""
    import shlex

    return shlex.join(["matbench", *(a for a in argv if a != "--overwrite")])
