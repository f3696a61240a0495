"""Fetch task data from the Hugging Face hub into its cache (huggingface_hub / datasets), offline-aware.

An unreachable hub gives ONE clear message that says how to work offline instead of a stack of retries.
"""

from __future__ import annotations

from pathlib import Path

from matbench.errors import MatbenchError
from matbench.tasks import TaskSpec


def _offline_help(spec: TaskSpec, exc: BaseException) -> MatbenchError:
    d = spec.data
    if d.get("hub_repo"):
        where = f"{d['hub_repo']} ({d['hub_file']})"
        prefill = f"hf download {d['hub_repo']} --repo-type dataset --include 'MAT-Benchmark/*'"
        local = (
            f"--data-dir DIR (a folder with {d['file']} and its images in {d.get('images')}/ or beside it)"
        )
    else:
        where = f"{d['hub_dataset']} (config {d['config']}, split {d['split']})"
        prefill = (
            f"python -c \"import datasets; datasets.load_dataset('{d['hub_dataset']}', '{d['config']}')\""
        )
        local = (
            f"--data-file FILE.jsonl (FlashRAG format) or --data-dir DIR holding {d['config']}/{d['file']}"
        )
    reason = type(exc).__name__ + (f": {str(exc).splitlines()[0]}" if str(exc) else "")
    return MatbenchError(
        f"cannot load task {spec.name} from the Hugging Face hub {where} [{reason}]. "
        f"Work offline with {local}, or pre-fill the HF cache on a connected machine (`{prefill}`) "
        "and set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1."
    )


def is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision.lower())


def resolve_commit(spec: TaskSpec, revision: str | None) -> str | None:
    """The commit the task's hub data will load from: ``revision`` itself when it is a commit, else the commit
    it (default ``main``) points to now, asked of the hub, or of the local HF cache when offline. None when
    neither can tell; the load then goes ahead at ``revision`` as given and reports its own error.

    Why: loading at the resolved commit makes an unpinned run's data exact and recorded, so a resume after the
    hub moved is refused instead of mixing two versions of the data."""
    rev = revision or "main"
    if is_commit(rev):
        return rev.lower()
    d = spec.data
    repo = d.get("hub_repo") or d.get("hub_dataset")
    if not repo:
        return None
    from huggingface_hub import HfApi, constants

    if not constants.HF_HUB_OFFLINE:
        try:
            sha = HfApi().dataset_info(repo, revision=rev).sha
            if sha:
                return sha
        except Exception:  # noqa: BLE001 - unreachable or unknown: the cache may still know, the load reports
            pass
    ref = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}" / "refs" / rev
    try:
        sha = ref.read_text().strip()
    except OSError:
        return None
    return sha if is_commit(sha) else None


def fetch_mat(spec: TaskSpec, revision: str | None = None) -> tuple[Path, Path]:
    """Download (or reuse from the HF cache) the task's json and image folder at ``revision`` (None: the
    spec's pin, else the hub's head); return their local paths."""
    from huggingface_hub import snapshot_download

    d = spec.data
    try:
        root = snapshot_download(
            repo_id=d["hub_repo"],
            repo_type="dataset",
            allow_patterns=[d["hub_file"], f"{d['hub_images']}/*"],
            revision=revision or d.get("revision"),
        )
    except Exception as exc:  # noqa: BLE001 - every hub failure (offline, HTTP, missing cache) gets the same advice
        raise _offline_help(spec, exc) from exc
    json_path = Path(root) / d["hub_file"]
    if not json_path.is_file():
        raise _offline_help(spec, FileNotFoundError(f"{d['hub_file']} not in the downloaded snapshot {root}"))
    return json_path, Path(root) / d["hub_images"]


def fetch_flashrag(spec: TaskSpec, revision: str | None = None) -> list[dict]:
    """Rows of a FlashRAG_datasets config/split as plain dicts, at ``revision`` (as ``fetch_mat``)."""
    import datasets

    d = spec.data
    try:
        ds = datasets.load_dataset(
            d["hub_dataset"], d["config"], split=d["split"], revision=revision or d.get("revision")
        )
    except Exception as exc:  # noqa: BLE001 - see fetch_mat
        raise _offline_help(spec, exc) from exc
    return [dict(row) for row in ds]
