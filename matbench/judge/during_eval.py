"""`matbench eval --judge MODEL`: each sample is judged as soon as its record is written.

The eval holds the run directory's lock, so it is the one writer of ``judgments.jsonl`` too. Samples finished
by an earlier invocation (a resumed run) and judge errors are judged once the episodes are done, so the judge
block in summary.json always covers every finished sample, as `matbench judge RUN` would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from matbench.judge.loop import Judge, judge_records, needs_judging, slim_record
from matbench.judge.records import JudgmentsFile
from matbench.judge.summary import current_judgments, judge_block


class EvalJudging:
    def __init__(self, judge: Judge) -> None:
        self.judge = judge
        self._files: dict[Path, JudgmentsFile] = {}
        self._tasks: dict[Path, list[asyncio.Task]] = {}

    def start(self, run_dir: Path) -> None:
        out = JudgmentsFile(run_dir)
        out.start(self.judge.config, overwrite=self.judge.settings.overwrite)
        self._files[run_dir] = out
        self._tasks[run_dir] = []

    def on_record(self, run_dir: Path, record: dict) -> None:
        """Called as a sample's record is written (on the event loop): its judging starts at once."""
        if record.get("status") == "error":
            return
        task = asyncio.get_running_loop().create_task(
            judge_records(self.judge, self._files[run_dir], [slim_record(record)])
        )
        self._tasks[run_dir].append(task)

    async def finish(self, run_dir: Path, records) -> dict:
        """Wait for this run's judging, judge what is left (earlier samples, errors), return the block."""
        tasks, self._tasks[run_dir] = self._tasks.get(run_dir, []), []
        if tasks:
            await asyncio.gather(*tasks)
        out = self._files[run_dir]
        slim = [slim_record(r) for r in records]
        latest = out.latest()
        fp = self.judge.config["fingerprint"]
        todo = [r for r in slim if needs_judging(r, latest.get(str(r.get("id"))), fp)]
        del latest
        if todo:
            await judge_records(self.judge, out, todo)
        pairs, config = current_judgments(run_dir, slim)
        return judge_block(pairs, config, self.judge.price)
