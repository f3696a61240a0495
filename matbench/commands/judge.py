"""`matbench judge RUN_DIR --judge MODEL`: an LLM judge's verdict on every sample of a finished run.

The evaluated model is never called again: the judge reads ``predictions.jsonl`` and writes
``judgments.jsonl`` and the ``judge`` block of summary.json (matbench/judge/). `matbench eval --judge MODEL`
does the same while the run goes, with the options declared here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_judge_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--judge*`` options, declared once (matbench/run/options.py) for `judge` and `eval`."""
    from dataclasses import replace

    from matbench.run.options import JUDGE_OPTIONS

    group = p.add_argument_group(JUDGE_OPTIONS[0].group)
    for opt in JUDGE_OPTIONS:
        (replace(opt, required=True) if opt.name == "judge" else opt).add_to(group)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a finished run with an LLM (accuracy beside F1/EM)",
        description="Ask an LLM judge whether each answer of a run is correct (the evaluated model is not called). "
        "Writes judgments.jsonl and the judge block of summary.json; rerunning resumes and retries judge errors.",
    )
    p.add_argument("run_dir", help="a run directory (runs/<model>_<task>_<key>/)")
    add_judge_arguments(p)
    p.add_argument(
        "--max-cost", type=float, metavar="USD", help="judge no new sample once the judge has spent this"
    )
    p.add_argument(
        "--cache-dir", help="response cache and SenseNova-MARS's script (default $MATBENCH_CACHE_DIR)"
    )
    p.add_argument(
        "--no-response-cache",
        dest="response_cache",
        action="store_false",
        help="do not reuse cached judge replies",
    )
    p.add_argument("--prices", help="a price table (YAML) adding to or replacing the shipped one")
    p.add_argument("--json", action="store_true", help="print the judge block as one JSON object")
    p.set_defaults(func=run)


def read_run(run_dir: str) -> tuple[object, list[dict]]:
    """The run and its latest records, or one line: not a directory, not a run, no predictions."""
    from matbench.errors import ConfigError
    from matbench.records.run_dir import RunDir

    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such run directory")
    run = RunDir(path)
    if not run.exists():
        raise ConfigError(f"{path} is not a matbench run directory (no config.json)")
    from matbench.judge.loop import slim_record

    records = [slim_record(r) for r in run.iter_records()]
    if not records:
        raise ConfigError(f"{path} holds no predictions (predictions.jsonl is empty): nothing to judge")
    return run, records


def run(args: argparse.Namespace) -> int:
    import asyncio

    from matbench.judge.loop import Judge, JudgeSettings
    from matbench.run.lock import RunLock

    run_dir, records = read_run(args.run_dir)
    judge = Judge(JudgeSettings.of(args, max_cost=args.max_cost))  # preflight and strings before anything

    async def main() -> dict:
        try:
            return await judge_run(judge, run_dir.path, records)
        finally:
            await judge.aclose()

    with RunLock(run_dir.path):
        block = asyncio.run(main())
    if args.json:
        print(json.dumps(block))
    else:
        print_block(block)
    return 1 if block["errors"] else 0


async def judge_run(judge, path: Path, records: list[dict]) -> dict:
    """Judge what is not judged yet (or failed, or changed), then write and return the summary block."""
    from matbench.judge.loop import judge_records, needs_judging
    from matbench.judge.records import JudgmentsFile
    from matbench.judge.summary import current_judgments, judge_block, write_judge_block

    out = JudgmentsFile(path)
    out.start(judge.config, overwrite=judge.settings.overwrite)
    latest = out.latest()
    fp = judge.config["fingerprint"]
    todo = [r for r in records if needs_judging(r, latest.get(str(r.get("id"))), fp)]
    del latest
    await judge_records(judge, out, todo)
    pairs, config = current_judgments(path, records)
    block = judge_block(pairs, config, judge.price)
    if judge.meter is not None:
        block["max_cost"] = {
            **judge.meter.block(),
            "not_judged": judge.skipped,
        }
    write_judge_block(path, block)
    return block


def print_block(block: dict) -> None:
    from matbench.judge.summary import judge_lines

    for line in judge_lines(block):
        print(line)
    mc = block.get("max_cost")
    if mc and mc.get("not_judged"):
        print(
            f"stopped by --max-cost ${mc['limit_usd']:g}: {mc['not_judged']} sample(s) not judged; "
            "rerun with a higher --max-cost to finish"
        )
    if mc and mc.get("halted"):
        print(f"matbench: {mc['halted']}", file=sys.stderr)
    if block.get("errors"):
        print(
            f"matbench: {block['errors']} judgment(s) failed on the judge's API; rerun the same command to judge "
            "them again",
            file=sys.stderr,
        )
