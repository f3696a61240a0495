"""`matbench submit`: validate a finished run and record it on the leaderboard (or record a reference file)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="validate a finished run and add it to the leaderboard",
        description="Validate a finished run against its task (every sample once, the task's gold answers and "
        "version), recompute its scores from the predictions, refuse it if summary.json disagrees, and store "
        "a leaderboard entry under <leaderboard-dir>/submissions/. With --reference, score a published "
        "predictions file instead; with --authors-references, (re)build all of the Visual-ARFT authors' entries; "
        "with --literature, the published judge accuracies of matbench/data/literature.yaml.",
    )
    p.add_argument("run_dir", nargs="?", help="the run directory written by `matbench eval`")
    p.add_argument("--name", help="display name on the leaderboard (default: the model spec)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data-dir", help="load the task's samples from this folder (overrides the run's)")
    data.add_argument("--data-file", help="load the task's samples from this file (overrides the run's)")
    p.add_argument(
        "--leaderboard-dir", help="default: $MATBENCH_LEADERBOARD_DIR or the repository's leaderboard/"
    )
    p.add_argument(
        "--authors-repo",
        help="a copy of the Visual-ARFT authors' repository, to rebuild the requests of a run on their protocol "
        "(default: $MATBENCH_AUTHORS_REPO, then matbench's cache, then one download at the pinned commit)",
    )
    ref = p.add_argument_group("reference entries")
    ref.add_argument("--reference", metavar="PRED_FILE", help="score this published predictions file instead")
    ref.add_argument("--task", help="the task of --reference")
    ref.add_argument("--model", help="model id of --reference (e.g. visual-arft-7b)")
    ref.add_argument("--provenance", default="", help="where --reference comes from")
    ref.add_argument("--search", help="search backend the --reference system used, if any")
    ref.add_argument(
        "--protocol", default="visual-arft", help="protocol of --reference (default visual-arft)"
    )
    ref.add_argument(
        "--authors-references",
        metavar="DIR",
        help="rebuild every Visual-ARFT authors' entry from their prediction files: DIR is a copy of their "
        "repository (the folder holding Visual-ARFT/) or a flat folder of the files",
    )
    ref.add_argument(
        "--literature",
        action="store_true",
        help="(re)write the literature's published judge accuracies (matbench/data/literature.yaml)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.errors import ConfigError
    from matbench.report import submissions_dir, writable_leaderboard_dir
    from matbench.report.entries import save_entry

    target = submissions_dir(writable_leaderboard_dir(args.leaderboard_dir))
    modes = sum(x is not None for x in (args.run_dir, args.reference, args.authors_references))
    if modes + bool(args.literature) != 1:
        raise ConfigError(
            "give exactly one of RUN_DIR, --reference PRED_FILE, --authors-references DIR or --literature"
        )
    if args.literature:
        from matbench.report.literature import build_literature

        for path, written in build_literature(target):
            print(f"{'wrote' if written else 'unchanged'} {path}")
        return 0
    if args.authors_references:
        from matbench.report.reference import build_authors_references

        for path, written in build_authors_references(args.authors_references, target):
            print(f"{'wrote' if written else 'unchanged'} {path}")
        return 0
    if args.reference:
        from matbench.report.reference import rescored_entry

        if not (args.task and args.model and args.name):
            raise ConfigError("--reference needs --task, --model and --name")
        entry = rescored_entry(
            args.reference,
            args.task,
            name=args.name,
            model=args.model,
            provenance=args.provenance,
            search=args.search,
            protocol=args.protocol,
        )
        path, written = save_entry(entry, target)
        print(f"{'wrote' if written else 'unchanged'} {path}")
        return 0

    from matbench.display import pct
    from matbench.report.submit import Refused, submit_run

    try:
        result = submit_run(
            args.run_dir,
            target,
            name=args.name,
            data_dir=args.data_dir,
            data_file=args.data_file,
            authors_repo=args.authors_repo,
        )
    except Refused as exc:
        raise Refused(f"{args.run_dir}: refused: {exc}") from None
    e = result.entry
    state = "recorded" if result.written else "already recorded (unchanged)"
    if not e.official:
        state += f" as an UNOFFICIAL entry (shown apart, never ranked: {e.unofficial})"
    splits = "  ".join(f"{s} {pct(v['f1'])}/{pct(v['em'])}" for s, v in e.scores.items() if s != "all")
    print(
        f"{state}: {result.path}\n{e.name} on {e.task} v{e.task_version}: n={e.n} F1 {pct(e.scores['all']['f1'])} "
        f"EM {pct(e.scores['all']['em'])}  {splits}  errors={e.errors} input_errors={e.input_errors}"
    )
    return 0
