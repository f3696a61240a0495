"""``judgments.jsonl``: one line per judged sample, with the guarantees of ``predictions.jsonl``.

One writer (the run directory's lock, held by `matbench judge` or by the `matbench eval --judge` that writes
the predictions), whole lines (appended and flushed; a failed write is cut back off and a full disk is one
line), a torn last line repaired before anything is appended, resumable (the latest line of an id wins; a
sample whose answer changed since, or whose judging failed, is judged again). ``judge.json`` beside it records
who judged (model identity, prompt and its source), so judgments of two judges are never mixed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from matbench.errors import ConfigError
from matbench.records.run_dir import (
    SCHEMA_VERSION,
    append_line,
    iter_lines,
    read_record,
    repair_tail,
    versioned,
    write_json_atomic,
)

JUDGMENTS_FILE = "judgments.jsonl"
JUDGE_CONFIG_FILE = "judge.json"
VERDICTS = ("correct", "incorrect", "unparsed", "error")
JUDGED = ("correct", "incorrect", "unparsed")  # the denominator of judge accuracy; errors are rerun


@dataclass
class Judgment:
    """One sample's verdict. ``answer`` is the prediction that was judged (a changed one is judged again)."""

    id: str
    verdict: str
    split: str | None
    method: str  # "em_match" | "no_answer" | "llm_judge"
    answer: str | None
    em: float
    reason: str | None = None
    reply: str | None = None  # the deciding call's reply, capped like replies (its length beside it)
    reply_chars: int | None = None
    calls: list[dict] = field(default_factory=list)  # per call: gold, verdict, reply, tokens, cached, error
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})
    billed_tokens: dict[str, int] = field(default_factory=dict)  # tokens of calls not answered by the cache
    cost_usd: float | None = None
    error: str | None = None
    judge: str = ""  # the judge's fingerprint (judge.json)

    def to_dict(self) -> dict:
        out: dict = {"id": self.id, "schema_version": SCHEMA_VERSION}  # id first, as predictions lines
        out.update((name, getattr(self, name)) for name in self.__dataclass_fields__)
        return out


class JudgmentsFile:
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / JUDGMENTS_FILE
        self.config_path = self.run_dir / JUDGE_CONFIG_FILE
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return self.path.is_file()

    def append(self, judgment: Judgment) -> None:
        """One whole line, handed to the OS before returning; a full disk is one :class:`DiskFull` line."""
        data = (json.dumps(judgment.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            append_line(self.path, data)

    def repair(self) -> int:
        return repair_tail(self.path) if self.path.is_file() else 0

    def latest(self) -> dict[str, dict]:
        """The latest judgment of each id (a judgments file holds small records: one dict per sample)."""
        if not self.path.is_file():
            return {}
        out: dict[str, dict] = {}
        for _, _, row in iter_lines(self.path):
            out[str(row.get("id"))] = row
        return out

    def read_config(self) -> dict | None:
        if not self.config_path.is_file():
            return None
        return read_record(self.config_path)

    def start(self, config: dict, *, overwrite: bool) -> None:
        """Before the first new line: the same judge continues its judgments; another is refused (or, with
        ``overwrite``, replaces them)."""
        old = self.read_config()
        if old is not None and old.get("fingerprint") != config["fingerprint"] and self.latest():
            if not overwrite:
                raise ConfigError(
                    f"{self.run_dir} was judged by {old.get('model')} with prompt {old.get('prompt')} "
                    f"(judge fingerprint {old.get('fingerprint')}); this judge is {config['model']} with prompt "
                    f"{config['prompt']}: pass --judge-overwrite to replace those judgments"
                )
        if overwrite or (old is not None and old.get("fingerprint") != config["fingerprint"]):
            self.path.unlink(missing_ok=True)
        self.repair()
        write_json_atomic(self.config_path, versioned(config))


def merge_judgments(parts: list[Path], merged: Path) -> bool:
    """`matbench merge`: the shards' judgments joined into the merged run, when every shard was judged by the
    same judge (else none are carried: `matbench judge` on the merged run judges it, from the response cache)."""
    files = [JudgmentsFile(p) for p in parts]
    configs = [f.read_config() if f.exists() else None for f in files]
    if not configs or any(c is None for c in configs) or len({c.get("fingerprint") for c in configs}) != 1:
        return False
    out = JudgmentsFile(merged)
    write_json_atomic(out.config_path, versioned(configs[0]))
    for f in files:
        for row in f.latest().values():
            out.append(Judgment(**{k: v for k, v in row.items() if k in Judgment.__dataclass_fields__}))
    return True
