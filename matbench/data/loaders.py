"""Loaders: turn a task's data source (hub or local) into ``Sample`` records.

Bad rows never vanish: a malformed row, a missing or unreadable image, or a duplicate id becomes a Sample
with ``input_error`` set (naming the file and row), which the runner reports with status ``input_error``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType

import jsonlines

from matbench.data.sample import Sample
from matbench.errors import InputError, MatbenchError
from matbench.registry import LOADERS
from matbench.tasks import TaskSpec

# The metadata of the many samples that have none: one shared, read-only empty mapping.
_NO_METADATA = MappingProxyType({})
log = logging.getLogger(__name__)

#: a task spec's ``data.format`` names one in :data:`matbench.registry.LOADERS` (built-ins below; a plug-in
#: adds one through the ``matbench.loaders`` entry points): ``(spec, data file, images folder) -> samples``
Loader = Callable[[TaskSpec, Path, Path | None], list[Sample]]


def load_samples(
    spec: TaskSpec,
    *,
    data_dir: str | Path | None = None,
    data_file: str | Path | None = None,
    revision: str | None = None,
) -> list[Sample]:
    """Samples of ``spec`` from ``data_file``, a ``data_dir``, or the Hugging Face hub (default; at
    ``revision``, else the spec's pinned one)."""
    fmt = str(spec.data.get("format"))
    if fmt not in LOADERS:
        raise MatbenchError(
            f"task {spec.name}: no loader for data format {fmt!r}; known: {', '.join(LOADERS.names())}"
        )
    loader: Loader = LOADERS.load(fmt)
    if data_file is not None:
        path = Path(data_file)
        if not path.is_file():
            raise InputError("data file not found", file=str(path))
        return loader(spec, path, None)
    if data_dir is not None:
        path, images = _find_in_dir(spec, Path(data_dir))
        return loader(spec, path, images)
    from matbench.data.hub import fetch_flashrag, fetch_mat

    if fmt == "flashrag":
        return _samples_from_flashrag_rows(spec, fetch_flashrag(spec, revision), source=spec.source_label())
    path, images = fetch_mat(spec, revision)
    return loader(spec, path, images)


def _find_in_dir(spec: TaskSpec, root: Path) -> tuple[Path, Path | None]:
    """Accept DIR/<file>, DIR/MAT-Benchmark/<file> or DIR/<config>/<file>; images in `*-image/` or beside."""
    if not root.is_dir():
        raise InputError("data directory not found", file=str(root))
    name = spec.data["file"]
    candidates = [root / name, root / "MAT-Benchmark" / name]
    if spec.data.get("config"):
        candidates.append(root / spec.data["config"] / name)
    for cand in candidates:
        if cand.is_file():
            images = cand.parent / spec.data["images"] if spec.data.get("images") else None
            if images is not None and not images.is_dir():
                images = cand.parent  # images beside the json (as in the demo folders)
            return cand, images
    raise InputError(f"no {name} for task {spec.name} (looked in {', '.join(str(c) for c in candidates)})")


def _read_json_list(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}", file=str(path)) from exc
    if not isinstance(data, list):
        raise InputError("expected a JSON list of rows", file=str(path))
    return data


def check_image(path: Path) -> str | None:
    """None if ``path`` is a readable image, else why not (header check only: cheap for 200 images)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return f"image not found: {path}"
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"unreadable image {path}: {exc}"
    return None


def _finish(samples: list[Sample], path: Path) -> list[Sample]:
    """Mark duplicate ids (every occurrence after the first) as input errors and log each input error."""
    seen: set[str] = set()  # ids only: the first row of a duplicate is looked up when one is found
    for row, sample in enumerate(samples, 1):
        if sample.id in seen and sample.input_error is None:
            first = next(i for i, other in enumerate(samples, 1) if other.id == sample.id)
            sample.input_error = f"{path}, row {row}: duplicate id {sample.id} (first at row {first})"
        seen.add(sample.id)
        if sample.input_error:
            log.warning("%s", sample.input_error)
    return samples


def _bad(row_no: int, raw: object, path: Path, why: str) -> Sample:
    rid = raw.get("id") if isinstance(raw, dict) else None
    return Sample(
        id=str(rid) if rid is not None else f"row{row_no}",
        question=str(raw.get("question", "")) if isinstance(raw, dict) else "",
        answers=[],
        input_error=f"{path}, row {row_no}: {why}",
    )


def _image_path(images: Path | None, json_path: Path, name: str) -> tuple[Path | None, str | None]:
    """The image's path inside the data folder, or why not: a data file names images only inside its own
    folder (an absolute path or a ``..`` that leaves it would read, send and copy a host file)."""
    base = images if images is not None else json_path.parent
    if Path(name).is_absolute() or name.startswith("~"):
        return None, f"image path {name!r} is absolute; images must be inside the data folder {base}"
    norm = os.path.normpath(name)
    if norm == ".." or norm.startswith("../") or os.path.isabs(norm):
        return None, f"image path {name!r} leaves the data folder {base}"
    return base / norm, None


def load_mat_search(spec: TaskSpec, path: Path, images: Path | None) -> list[Sample]:
    """Rows ``{id, question, answer, image_path}``; split by field if present, else by id range."""
    samples = []
    for row_no, raw in enumerate(_read_json_list(path), 1):
        if not isinstance(raw, dict):
            samples.append(_bad(row_no, raw, path, "row is not an object"))
            continue
        missing = [k for k in ("id", "question", "answer", "image_path") if raw.get(k) in (None, "")]
        if missing:
            samples.append(_bad(row_no, raw, path, f"missing field(s) {', '.join(missing)}"))
            continue
        answer = raw["answer"]
        answers = [str(a) for a in answer] if isinstance(answer, list) else [str(answer)]
        image, outside = _image_path(images, path, str(raw["image_path"]))
        sample = Sample(
            id=str(raw["id"]),
            question=str(raw["question"]),
            answers=answers,
            image=image,
            split=spec.splits.split_of(raw["id"], raw),
            metadata={"image_path": raw["image_path"]},
        )
        why = outside or check_image(image)
        if why:
            sample.input_error = f"{path}, row {row_no}: {why}"
        samples.append(sample)
    return _finish(samples, path)


def load_mat_coding(spec: TaskSpec, path: Path, images: Path | None) -> list[Sample]:
    """Rows ``{id, question, answers[], ori_image_path, processed_image_path, type[], split}``.

    Items whose FIRST type is ``crop`` are fed the original image (the question's box is in its coordinates),
    as the authors' script decides (``type[0] == 'crop'``); all others the processed (degraded) one.
    """
    samples = []
    for row_no, raw in enumerate(_read_json_list(path), 1):
        if not isinstance(raw, dict):
            samples.append(_bad(row_no, raw, path, "row is not an object"))
            continue
        missing = [k for k in ("id", "question", "answers", "type") if raw.get(k) in (None, "", [])]
        if missing:
            samples.append(_bad(row_no, raw, path, f"missing field(s) {', '.join(missing)}"))
            continue
        types = raw["type"] if isinstance(raw["type"], list) else [raw["type"]]
        answers = raw["answers"] if isinstance(raw["answers"], list) else [raw["answers"]]
        key = "ori_image_path" if types[0] == "crop" else "processed_image_path"
        if not raw.get(key):
            samples.append(_bad(row_no, raw, path, f"missing field {key}"))
            continue
        image, outside = _image_path(images, path, str(raw[key]))
        sample = Sample(
            id=str(raw["id"]),
            question=str(raw["question"]),
            answers=[str(a) for a in answers],
            image=image,
            split=spec.splits.split_of(raw["id"], raw),
            metadata={"type": [str(t) for t in types], "image_field": key},
        )
        why = outside or check_image(image)
        if why:
            sample.input_error = f"{path}, row {row_no}: {why}"
        samples.append(sample)
    return _finish(samples, path)


def load_flashrag(spec: TaskSpec, path: Path, images: Path | None) -> list[Sample]:
    """FlashRAG jsonl ``{id, question, golden_answers, metadata?}``, one row per line, streamed: each raw row
    becomes its Sample at once, so loading holds no list of raw rows beside the samples. ``jsonlines`` reads
    the bytes line by line, so a line that is not UTF-8 or not JSON becomes that row's input error and the
    rows after it still load."""

    def rows() -> Iterator[object]:
        with path.open("rb") as fh, jsonlines.Reader(fh) as reader:
            while True:
                try:
                    yield reader.read(skip_empty=True, allow_none=True)
                except EOFError:
                    return
                except jsonlines.InvalidLineError as exc:
                    cause = exc.__cause__
                    if isinstance(cause, UnicodeDecodeError):
                        why = f"not valid UTF-8 text: {cause}"
                    else:
                        why = f"not valid JSON: {cause}" if isinstance(cause, ValueError) else str(exc)
                    yield InputError(why, file=str(path), row=exc.lineno)

    try:
        return _samples_from_flashrag_rows(spec, rows(), source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc


def _samples_from_flashrag_rows(spec: TaskSpec, rows, *, source: str) -> list[Sample]:
    samples = []
    for row_no, raw in enumerate(rows, 1):
        if isinstance(raw, InputError):
            samples.append(Sample(id=f"row{row_no}", question="", answers=[], input_error=str(raw)))
            continue
        if not isinstance(raw, dict):
            samples.append(_bad(row_no, raw, Path(source), "row is not an object"))
            continue
        answers = raw.get("golden_answers")
        if raw.get("question") in (None, "") or not answers:
            samples.append(_bad(row_no, raw, Path(source), "missing question or golden_answers"))
            continue
        rid = raw.get("id")
        samples.append(
            Sample(
                id=str(rid) if rid is not None else str(row_no - 1),
                question=str(raw["question"]),
                answers=[str(a) for a in (answers if isinstance(answers, list) else [answers])],
                split=spec.splits.split_of(rid if rid is not None else row_no, raw),
                metadata=dict(meta) if (meta := raw.get("metadata")) else _NO_METADATA,
            )
        )
    return _finish(samples, Path(source))
