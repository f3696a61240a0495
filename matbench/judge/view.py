"""What `matbench view` shows of a judged run: each sample's verdict and reason, and the judge's line.

The run directory may come from anyone: the judgments file is checked not to be a FIFO or device, every value is
turned into plain text, and the page puts it in with ``textContent`` (the header line is HTML-escaped).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from matbench.judge.records import JUDGED, JudgmentsFile
from matbench.records.files import check_not_special
from matbench.records.run_dir import cap_text


def _text(x: object) -> str | None:
    if x is None:
        return None
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)


class JudgeViews:
    def __init__(self, run_dir: Path) -> None:
        jf = JudgmentsFile(run_dir)
        self.config: dict | None = None
        self.latest: dict[str, dict] = {}
        if jf.exists():
            check_not_special(jf.path)
            check_not_special(jf.config_path)
            config = jf.read_config()
            self.config = config if isinstance(config, dict) else None
            self.latest = jf.latest() if self.config else {}
        self.counts = {v: 0 for v in (*JUDGED, "error")}

    def of(self, rec: dict) -> dict | None:
        """The sample's current judgment as plain text, or None (not judged, or judged before a rerun)."""
        if self.config is None or rec.get("status") == "error":
            return None
        j = self.latest.get(str(rec.get("id")))
        pred = rec.get("prediction")
        if (
            not isinstance(j, dict)
            or j.get("judge") != self.config.get("fingerprint")
            or j.get("answer") != cap_text(None if pred is None else str(pred))
        ):
            return None
        verdict = str(j.get("verdict"))
        if verdict in self.counts:
            self.counts[verdict] += 1
        return {
            "verdict": verdict,
            "reason": _text(j.get("reason")),
            "reply": _text(j.get("reply")),
            "method": _text(j.get("method")),
            "by": f"{_text(self.config.get('model'))}, {_text(self.config.get('prompt'))} prompt",
        }

    def header(self) -> str:
        if self.config is None:
            return ""
        n = sum(self.counts[v] for v in JUDGED)
        acc = f"{100 * self.counts['correct'] / n:.2f}" if n else "n/a"
        model, prompt = _text(self.config.get("model")) or "(unnamed model)", _text(self.config.get("prompt"))
        text = (
            f"judge {model}{f' ({prompt} prompt)' if prompt else ''}: accuracy {acc} over {n} judged "
            f"sample(s); unparsed {self.counts['unparsed']}, judge errors {self.counts['error']}"
        )
        return f'<div class="meta">{html.escape(text)}</div>'
