"""Build tasks/gold/<task>.tsv.gz (per-id gold hashes) from the official gold sets in the fixtures.

    python scripts/build-gold-index.py [FIXTURES_DIR]

Each set is checked against its task spec's data.gold_sha256 first: only the official gold set is indexed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from matbench.data.gold_index import index_path, write_index
from matbench.data.loaders import load_samples
from matbench.data.sample import Sample
from matbench.report.official import gold_digest
from matbench.tasks import get_task

MULTIHOP = {"2wikimultihopqa": "dev", "hotpotqa": "dev", "musique": "dev", "bamboogle": "test"}


def official_samples(fixtures: Path) -> dict[str, list[Sample]]:
    mat = fixtures / "mat"
    coding = json.loads((mat / "mat-coding-answers.json").read_text(encoding="utf-8"))
    search = json.loads((mat / "mat-search-questions.json").read_text(encoding="utf-8"))
    out = {
        "mat-coding": [Sample(str(r["id"]), "", r["answers"], split=r["split"]) for r in coding],
        "mat-search": [Sample(str(r["id"]), "", [r["answer"]], split=r["split"]) for r in search],
    }
    for task, split in MULTIHOP.items():
        out[task] = load_samples(get_task(task), data_file=fixtures / "multihop" / task / f"{split}.jsonl")
    return out


def main() -> int:
    default = os.environ.get("MATBENCH_FIXTURES") or Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"
    fixtures = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    for task, samples in official_samples(fixtures).items():
        spec = get_task(task)
        if gold_digest(samples) != spec.data.get("gold_sha256"):
            print(f"{task}: the fixtures' gold set is not the official one (gold_sha256): skipped", file=sys.stderr)
            continue
        n = write_index(index_path(spec), ((s.id, s.answers) for s in samples))
        print(f"{index_path(spec)}: {n} ids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
