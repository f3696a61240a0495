"""Build matbench run directories and task data for the report tests from the real fixture data.

Runs are made of the Visual-ARFT authors' published predictions (gold answers and splits from the fixtures'
answer files), written through ``RunDir``/``SampleRecord`` exactly as ``matbench eval`` writes them, with
trajectories that use the six real MAT-Coding demo images.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from fixture_paths import FIXTURES

from matbench.models.cost import add_usage
from matbench.protocols.replay import request_digests
from matbench.protocols.resolve import resolve_protocol
from matbench.records.run_dir import RunDir, SampleRecord
from matbench.run.config import config_fingerprint, file_sha256
from matbench.scoring.base import make_scorer
from matbench.scoring.predictions import read_predictions
from matbench.scoring.table import Scored, aggregate
from matbench.tasks import get_task

PRED = Path("predictions") / "visual-arft"
# The authors' scripts (their protocol strings), in the shared fixtures.
AUTHORS_REPO = (
    FIXTURES / "visual-arft-repo"
).resolve()
DEMO = Path("mat") / "coding-demo"


def coding_answers(fixtures: Path) -> dict[str, dict]:
    rows = json.loads((fixtures / "mat" / "mat-coding-answers.json").read_text(encoding="utf-8"))
    return {str(r["id"]): r for r in rows}


def demo_rows(fixtures: Path) -> list[dict]:
    return json.loads((fixtures / DEMO / "MAT-Coding.json").read_text(encoding="utf-8"))


def make_coding_data(fixtures: Path, root: Path) -> Path:
    """A MAT-Coding data folder with all 200 ids: the six demo rows verbatim, the other 194 with their real
    gold answers and split, a placeholder question, and the type and images of a demo row (derived)."""
    root.mkdir(parents=True, exist_ok=True)
    demos = demo_rows(fixtures)
    by_id = {str(d["id"]): d for d in demos}
    rows = []
    for i, (rid, ans) in enumerate(coding_answers(fixtures).items()):
        if rid in by_id:
            rows.append(by_id[rid])
            continue
        donor = demos[i % len(demos)]
        rows.append(
            {
                "id": int(rid),
                "question": f"(question of MAT-Coding id {rid}: not in the fixtures)",
                "answers": ans["answers"],
                "ori_image_path": donor["ori_image_path"],
                "processed_image_path": donor["processed_image_path"],
                "type": donor["type"],
                "split": ans["split"],
            }
        )
    (root / "MAT-Coding.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    for img in (fixtures / DEMO).glob("*.png"):
        shutil.copyfile(img, root / img.name)
    return root


def coding_templates():
    """The stock visual-arft MAT-Coding strings (the authors', from the fixtures' copy of their scripts)."""
    task = get_task("mat-coding")
    return resolve_protocol(
        task, "visual-arft", None, authors_repo=str(AUTHORS_REPO), cache_dir=AUTHORS_REPO.parent
    ).templates


def stamped(traj: list[dict], question: str, templates=None) -> tuple[list[dict], dict[str, int]]:
    """``traj`` with each turn's ``request_sha256`` (what `matbench eval` records: the sha256 of the text the
    protocol built for that turn) and the record's token total (the sum of its turns')."""
    digests = list(request_digests(templates or coding_templates(), question, traj))
    tokens: dict[str, int] = {"input": 0, "output": 0}
    for turn, digest in zip(traj, digests, strict=False):
        turn["request_sha256"] = digest
    for turn in traj:
        add_usage(tokens, turn.get("tokens") or {})
    return traj, tokens


def coding_config(data_dir: Path | None, *, spec: str = "qwen2.5-vl-7b", seed: int = 0) -> dict:
    """The config.json `matbench eval` writes for a stock visual-arft MAT-Coding run (fingerprint included)."""
    task = get_task("mat-coding")
    protocol = resolve_protocol(
        task, "visual-arft", None, authors_repo=str(AUTHORS_REPO), cache_dir=AUTHORS_REPO.parent
    )
    core = {
        "task": {
            "name": task.name,
            "version": task.version,
            "source": "local" if data_dir else task.source_label(),
            "data_dir": str(data_dir) if data_dir else None,
            "data_file": None,
            "n_samples": 200,
            "spec_sha256": file_sha256(task.path),
        },
        "model": {
            "spec": spec,
            "backend": "openai",
            "model": "Qwen/Qwen2.5-VL-7B-Instruct",
            "base_url": "http://127.0.0.1:8000/v1",
        },
        "protocol": protocol.config(custom=False),
        "scoring": "visual-arft",
        "search": None,
        "options": {"crop_assist": True, "max_calls": 5, "top_k": 4},
        "decoding": {"temperature": 0.0, "top_p": None, "max_new_tokens": 1024, "seed": seed},
        "seed": seed,
    }
    return {
        "matbench_version": "0.1.0",
        "git_commit": "abc123",
        "created": "2026-11-25T19:00:00Z",
        "fingerprint": config_fingerprint(core),
        **core,
        "selection": {"limit": None, "ids": None},
        "packages": {"openai": "test"},
    }


def one_turn(pred: str | None) -> list[dict]:
    """The shortest trajectory of an answered sample: one turn whose answer is the prediction."""
    output = f"<answer>{pred}</answer>" if pred is not None else "no answer"
    return [{"turn": 1, "image": None, "output": output, "action": "answer", "answer": pred, "tool": None}]


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def coding_trajectory(
    fixtures: Path, run: Path, rid: str, demo: dict, question: str, pred: str | None
) -> list:
    """problem -> code (with an output image) -> answer, the turn layout the runner writes."""
    images = sorted((fixtures / DEMO).glob("*.png"))
    src = (
        fixtures / DEMO / (demo["ori_image_path"] if "crop" in demo["type"] else demo["processed_image_path"])
    )
    _link(src, run / "images" / rid / "input.png")
    _link(images[int(rid) % len(images)], run / "images" / rid / "turn2.png")
    problems = list(demo["type"])
    return [
        {
            "turn": 1,
            "image": f"images/{rid}/input.png",
            "output": f"<think>The image looks {' and '.join(problems)}.</think>\n<problem>{problems}</problem>",
            "action": "problem",
            "think": f"The image looks {' and '.join(problems)}.",
            "answer": None,
            "tokens": {"input": 812, "output": 40},
            "latency": 0.41,
            "cached": False,
            "error": None,
            "tool": {
                "name": "problem",
                "problems": problems,
                "tips": "<tips> Fix the image with OpenCV. </tips>",
            },
        },
        {
            "turn": 2,
            "image": None,
            "output": "<code>\nimport cv2\nimg = cv2.imread(path)\nimg = cv2.rotate(img, cv2.ROTATE_180)\n</code>",
            "action": "code",
            "think": "Rotate it back.",
            "answer": None,
            "tokens": {"input": 900, "output": 60},
            "latency": 0.52,
            "cached": False,
            "error": None,
            "tool": {
                "name": "code",
                "input": "import cv2\nimg = cv2.imread(path)\nimg = cv2.rotate(img, cv2.ROTATE_180)",
                "ok": True,
                "stdout": "saved",
                "stderr": "",
                "error": None,
                "wall_time": 0.06,
                "output_image": f"images/{rid}/turn2.png",
            },
        },
        {
            "turn": 3,
            "image": f"images/{rid}/turn2.png",
            "output": f"<think>Now I can read it.</think>\n<answer>{pred}</answer>",
            "action": "answer",
            "think": "Now I can read it.",
            "answer": pred,
            "tokens": {"input": 1500, "output": 20},
            "latency": 0.3,
            "cached": False,
            "error": None,
            "tool": None,
        },
    ]


def make_coding_run(
    fixtures: Path,
    run: Path,
    data_dir: Path | None,
    *,
    pred_file: str = "7b_mat_coding_grpo_step1400.json",
    spec: str = "qwen2.5-vl-7b",
    trajectories: bool = False,
    errors: tuple[str, ...] = (),
    overrides: dict[str, str | None] | None = None,
) -> Path:
    """A finished MAT-Coding run of the authors' predictions; ``errors`` ids fail (status error, no answer),
    ``overrides`` replace some predictions."""
    task = get_task("mat-coding")
    scorer = make_scorer("visual-arft", task.scoring)
    answers = coding_answers(fixtures)
    demos = demo_rows(fixtures)
    demo_by_id = {str(d["id"]): d for d in demos}
    rows = {r.id: r for r in read_predictions(fixtures / PRED / pred_file)}
    rd = RunDir(run)
    rd.create(coding_config(data_dir, spec=spec))
    templates = coding_templates()
    scored = []
    for i, (rid, ans) in enumerate(answers.items()):
        demo = demo_by_id.get(rid, demos[i % len(demos)])
        question = (
            demo["question"]
            if rid in demo_by_id
            else f"(question of MAT-Coding id {rid}: not in the fixtures)"
        )
        pred = rows[rid].prediction
        if overrides and rid in overrides:
            pred = overrides[rid]
        status, error = "ok", None
        if rid in errors:
            pred, status, error = None, "error", "model server returned HTTP 500"
        s = scorer(pred, ans["answers"])
        traj = coding_trajectory(fixtures, run, rid, demo, question, pred) if trajectories else one_turn(pred)
        traj, tokens = stamped(traj, question, templates)
        rd.append(
            SampleRecord(
                id=rid,
                split=ans["split"],
                question=question,
                gold=list(ans["answers"]),
                prediction=pred,
                f1=s.f1,
                em=s.em,
                status=status,
                error=error,
                turns=len(traj),
                tool_calls={"code": 1} if trajectories else {},
                tokens=tokens,
                metadata={"type": list(demo["type"])},
                trajectory=traj,
            )
        )
        scored.append(Scored(rid, ans["split"], s.f1, s.em, missing=pred is None))
    write_summary(rd, scored, spec, errors=len(errors))
    return run


def write_summary(rd: RunDir, scored: list[Scored], model: str, *, errors: int = 0) -> None:
    config = rd.read_config()
    task = get_task(config["task"]["name"])
    agg = aggregate(scored, task.splits.names)
    rd.write_summary(
        {
            "task": task.name,
            "scoring": config["scoring"],
            **agg,
            "run": {
                "model": model,
                "errors": errors,
                "input_errors": 0,
                "calls": 0,
                "tool_errors": 0,
                "duration_s": 1.0,
                "finished": True,
            },
        }
    )


def edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def edit_records(run: Path, fn) -> None:
    """Apply ``fn`` to every record line (it may return None to drop the line)."""
    path = run / "predictions.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = fn(json.loads(line))
        if rec is not None:
            out.append(json.dumps(rec, ensure_ascii=False))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def make_search_run(run: Path, n: int = 12_576, *, seed: int = 0) -> Path:
    """A finished 2WikiMultihopQA-sized run (``n`` samples) with search trajectories of realistic size
    (2-4 turns, 4 snippets of ~40 words per search: ~3.5 KB per sample, ~44 MB at 12,576), written through
    ``RunDir``/``SampleRecord`` as ``matbench eval`` writes them, in a shuffled id order."""
    import random

    rng = random.Random(seed)
    words = (
        "the film director born american british river city war king queen album song football club county "
        "village church university company founded released season province district station series novel"
    ).split()

    pool = [rng.choice(words) for _ in range(50_000)]

    def text(k: int) -> str:
        j = rng.randrange(len(pool) - k)
        return " ".join(pool[j : j + k])

    search_scorer = make_scorer("visual-arft")
    rd = RunDir(run)
    rd.create(
        {
            "task": {"name": "2wikimultihopqa", "version": "1.0", "n_samples": n},
            "model": {"spec": "qwen2.5-vl-7b", "backend": "openai", "model": "Qwen/Qwen2.5-VL-7B-Instruct"},
            "protocol": {"name": "visual-arft"},
            "scoring": "visual-arft",
            "search": {"backend": "local"},
            "created": "2026-12-03T08:00:00Z",
        }
    )
    ids = list(range(n))
    rng.shuffle(ids)
    for i in ids:
        rid = f"{i:08x}{i:016x}"[:24]
        n_search = rng.randint(1, 3)
        traj = []
        for t in range(n_search):
            q = text(6)
            traj.append(
                {
                    "turn": t + 1,
                    "image": None,
                    "output": f"<think>{text(16)}</think>\n<search> {q} </search>",
                    "action": "search",
                    "think": text(16),
                    "answer": None,
                    "tokens": {"input": 300 + 400 * t, "output": 60},
                    "latency": 0.2,
                    "cached": False,
                    "error": None,
                    "tool": {
                        "name": "search",
                        "input": q,
                        "results": [
                            {
                                "title": text(2),
                                "url": f"local://{rng.randrange(21_000_000)}",
                                "snippet": text(36),
                            }
                            for _ in range(4)
                        ],
                        "error": None,
                        "cached": False,
                    },
                }
            )
        gold, pred = text(2), (text(2) if rng.random() < 0.6 else None)
        em = float(rng.random() < 0.4)
        status = "ok" if rng.random() > 0.01 else "error"
        if em:
            pred = gold  # the record's numbers are what the run's scorer gives (view rescores them)
        score = search_scorer(pred if status == "ok" else None, [gold])
        traj.append(
            {
                "turn": n_search + 1,
                "image": None,
                "output": f"<think>{text(20)}</think>\n<answer>{pred}</answer>",
                "action": "answer",
                "think": text(20),
                "answer": pred,
                "tokens": {"input": 1800, "output": 40},
                "latency": 0.3,
                "cached": False,
                "error": None,
                "tool": None,
            }
        )
        rd.append(
            SampleRecord(
                id=rid,
                split=None,
                question=f"Who is the {text(8)}?",
                gold=[gold],
                prediction=pred if status == "ok" else None,
                f1=score.f1,
                em=score.em,
                status=status,
                error=None if status == "ok" else "model server returned HTTP 500",
                turns=len(traj),
                tool_calls={"search": n_search},
                metadata={
                    "type": rng.choice(["compositional", "comparison", "inference", "bridge_comparison"])
                },
                trajectory=traj,
            )
        )
    return run


def optional_fixture(fixtures: Path, rel: str | Path) -> Path:
    """A fixture file that only a full fixtures folder holds (``scripts/fetch-fixtures.sh`` fetches it; the
    shipped copy of shared/ may not): skip the one test that needs it, saying so, when it is absent."""
    path = fixtures / rel
    if not path.is_file():
        import pytest

        pytest.skip(f"{rel} is not in the fixtures at {fixtures} (scripts/fetch-fixtures.sh fetches it)")
    return path


def authors_references(fixtures: Path, leaderboard: Path) -> None:
    """The authors' rescored entries in ``leaderboard``: rebuilt from their files when the fixtures hold all of
    them, else the shipped entries (which test_report_reference checks against every file the fixtures hold)."""
    from matbench.cli import main
    from matbench.report.reference import AUTHORS_FILES

    if all((fixtures / PRED / item.file).is_file() for item in AUTHORS_FILES):
        args = ["submit", "--authors-references", str(fixtures / PRED), "--leaderboard-dir", str(leaderboard)]
        assert main(args) == 0
        return
    shipped = Path(__file__).resolve().parents[1] / "leaderboard" / "submissions"
    (leaderboard / "submissions").mkdir(parents=True, exist_ok=True)
    for path in shipped.glob("reference-*.json"):
        shutil.copyfile(path, leaderboard / "submissions" / path.name)
