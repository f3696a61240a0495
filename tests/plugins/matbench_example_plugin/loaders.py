"""``qa-tsv``: one sample a line, ``id<TAB>question<TAB>answer[|answer...]``."""

from pathlib import Path

from matbench.data.sample import Sample
from matbench.tasks import TaskSpec


def load_qa_tsv(spec: TaskSpec, path: Path, images: Path | None) -> list[Sample]:
    samples = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 3:
            samples.append(Sample(id=f"row{no}", question="", answers=[],
                                  input_error=f"{path}, row {no}: expected id, question and answers"))
            continue
        samples.append(Sample(id=parts[0], question=parts[1], answers=parts[2].split("|")))
    return samples
