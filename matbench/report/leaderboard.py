"""The leaderboard table: one row per system (display name, model, protocol, search backend, scoring), columns
per task. pandas does the pivot; this module renders Markdown, CSV and JSON (``html_page`` renders HTML).

A task that uses no search tool (MAT-Coding) does not depend on the search backend, so its entry joins every
row of the same system that differs only by search backend (or makes its own row when there is none).
With several entries for one row and task, the latest submitted wins.

Rankings: one per (task, search setting) (``rankings``): runs that searched different corpora are never ranked
in one list. Entries that carry only a judge accuracy (the literature's rows) are kept apart in
``Board.literature``: shown in the judge tables, never mixed with F1/EM and never ranked with reproduced runs.
A run's cost is recomputed here from its recorded tokens and matbench's price table (``costs``).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from matbench.errors import ConfigError
from matbench.report.entries import Entry
from matbench.tasks import all_tasks

if TYPE_CHECKING:
    import pandas as pd

TASK_ORDER = ("mat-search", "mat-coding", "2wikimultihopqa", "hotpotqa", "musique", "bamboogle")
TASK_LABELS = {
    "mat-search": "MAT-Search",
    "mat-coding": "MAT-Coding",
    "2wikimultihopqa": "2Wiki",
    "hotpotqa": "HotpotQA",
    "musique": "MuSiQue",
    "bamboogle": "Bamboogle",
}
INDEX = ["system", "model", "protocol", "search", "scoring"]
KIND_MARK = {"run": "", "reference": "", "reported": "†"}
NO_SEARCH = "-"


@dataclass
class Row:
    system: str
    model: str
    protocol: str
    search: str
    scoring: str
    cells: dict[str, Entry] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, ...]:
        return (self.system, self.model, self.protocol, self.search, self.scoring)


@dataclass
class Board:
    """The ranked rows in display order, the tasks shown, the flat numeric frame (same order as rows), and the
    unofficial entries (runs on local or partial data): shown apart, never ranked."""

    rows: list[Row]
    tasks: list[str]
    splits: dict[str, list[str]]
    frame: pd.DataFrame
    unofficial: list[Entry] = field(default_factory=list)
    literature: list[Entry] = field(default_factory=list)
    costs: dict[str, dict] = field(default_factory=dict)  # entry key -> cost block priced by matbench
    sort: str = ""  # the column the rows are sorted by


def label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def task_order(entries: list[Entry], wanted: list[str] | None) -> list[str]:
    present = {e.task for e in entries}
    if wanted:
        known = set(all_tasks())
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise ConfigError(
                f"unknown task(s) {', '.join(unknown)}; known tasks: {', '.join(sorted(known))}"
            )
        return list(dict.fromkeys(wanted))
    ordered = [t for t in TASK_ORDER if t in present]
    return ordered + sorted(present - set(ordered))


def _uses_search(entry: Entry) -> bool:
    tasks = all_tasks()
    return entry.search is not None or (entry.task in tasks and "search" in tasks[entry.task].tools)


def build_rows(entries: list[Entry], tasks: list[str]) -> list[Row]:
    chosen = sorted((e for e in entries if e.task in tasks), key=lambda e: (e.submitted_at, e.key))
    rows: dict[tuple[str, ...], Row] = {}

    def row_for(e: Entry, search: str) -> Row:
        row = Row(e.name, str(e.model.get("spec") or ""), e.protocol or "-", search, e.scoring)
        return rows.setdefault(row.key, row)

    searchless = []
    for e in chosen:
        if _uses_search(e):
            row_for(e, e.search or NO_SEARCH).cells[e.task] = e
        else:
            searchless.append(e)
    for e in searchless:
        base = (e.name, str(e.model.get("spec") or ""), e.protocol or "-")
        targets = [r for r in rows.values() if r.key[:3] == base and r.scoring == e.scoring]
        for row in targets or [row_for(e, NO_SEARCH)]:
            row.cells[e.task] = e
    return list(rows.values())


def split_names(rows: list[Row], tasks: list[str]) -> dict[str, list[str]]:
    specs = all_tasks()
    out = {}
    for task in tasks:
        seen = {s for r in rows if task in r.cells for s in r.cells[task].scores if s != "all"}
        order = [s for s in (specs[task].splits.names if task in specs else []) if s in seen]
        out[task] = order + sorted(seen - set(order))
    return out


def task_columns(task: str, splits: list[str]) -> list[str]:
    cols = [f"{task}.f1", f"{task}.em"]
    for s in splits:
        cols += [f"{task}.{s}.f1", f"{task}.{s}.em"]
    return cols + [
        f"{task}.judge",
        f"{task}.n",
        f"{task}.errors",
        f"{task}.input_errors",
        f"{task}.cost_usd",
        f"{task}.cost_per_sample_usd",
    ]


def to_frame(
    rows: list[Row], tasks: list[str], splits: dict[str, list[str]], costs: dict[str, dict]
) -> pd.DataFrame:
    """Long (row, column, value) records pivoted into one wide numeric frame indexed like ``INDEX``."""
    import pandas as pd

    long = []
    for row in rows:
        for task, e in row.cells.items():
            values = {"f1": e.scores["all"]["f1"], "em": e.scores["all"]["em"], "n": e.n}
            values["errors"] = e.errors
            values["input_errors"] = e.input_errors
            cost = costs.get(e.key) or {}
            values["cost_usd"] = cost.get("usd")
            values["cost_per_sample_usd"] = cost.get("per_sample_usd")
            values["judge"] = (e.judge or {}).get("accuracy")
            for s in splits[task]:
                if s in e.scores:
                    values[f"{s}.f1"] = e.scores[s]["f1"]
                    values[f"{s}.em"] = e.scores[s]["em"]
            long += [(*row.key, f"{task}.{k}", v) for k, v in values.items() if v is not None]
    columns = [c for t in tasks for c in task_columns(t, splits[t])]
    index = pd.MultiIndex.from_tuples([r.key for r in rows], names=INDEX)
    if not long:
        return pd.DataFrame(index=index, columns=columns, dtype=float)
    df = pd.DataFrame(long, columns=[*INDEX, "column", "value"])
    df["value"] = df["value"].astype(float)
    wide = df.pivot_table(index=INDEX, columns="column", values="value", aggfunc="last", dropna=False)
    return wide.reindex(index=index, columns=columns)


def sort_columns(board: Board) -> list[str]:
    return INDEX + list(board.frame.columns)


def resolve_sort(board: Board, column: str | None) -> str:
    if column is None:
        return f"{board.tasks[0]}.f1" if board.tasks else "system"
    norm = column.strip().lower().replace(" ", ".").replace(":", ".")
    for name in sort_columns(board):
        if name.lower() == norm:
            return name
    raise ConfigError(f"unknown sort column {column!r}; choose one of {', '.join(sort_columns(board))}")


def entry_cost(entry: Entry, prices: dict) -> dict | None:
    """A run's cost from its recorded tokens and matbench's price table (never a price from the entry)."""
    from matbench.models.cost import cost_block, find_price

    if entry.kind != "run":
        return None
    recorded = entry.cost or {}
    tokens, billed = recorded.get("tokens"), recorded.get("billed_tokens")
    if not isinstance(tokens, dict):  # an entry without tokens: its cost cannot be checked
        return cost_block({}, {}, entry.n, None)
    model = {"model": entry.model.get("name"), "spec": entry.model.get("spec")}
    n = recorded.get("n") if isinstance(recorded.get("n"), int) else entry.n
    return cost_block(tokens, billed if isinstance(billed, dict) else tokens, n, find_price(prices, model))


def build_board(entries: list[Entry], tasks: list[str] | None = None, sort: str | None = None) -> Board:
    from matbench.models.cost import load_prices

    chosen_tasks = task_order(entries, tasks)
    literature = sorted(
        (e for e in entries if e.judge_only and e.task in chosen_tasks),
        key=lambda e: (
            chosen_tasks.index(e.task),
            str(e.source.get("repository")),
            e.source.get("position", 0),
        ),
    )
    scored = [e for e in entries if not e.judge_only]
    official = [e for e in scored if e.official]
    prices = load_prices() if any(e.kind == "run" for e in scored) else {}
    costs = {e.key: c for e in scored if (c := entry_cost(e, prices)) is not None}
    rows = build_rows(official, chosen_tasks)
    splits = split_names(rows, chosen_tasks)
    frame = to_frame(rows, chosen_tasks, splits, costs)
    apart = sorted(
        (e for e in scored if not e.official and e.task in chosen_tasks),
        key=lambda e: (chosen_tasks.index(e.task), e.name, e.submitted_at),
    )
    board = Board(rows, chosen_tasks, splits, frame, apart, literature, costs)
    column = board.sort = resolve_sort(board, sort)
    flat = frame.reset_index()
    flat["_pos"] = range(len(flat))
    numeric = column not in INDEX
    flat = flat.sort_values(
        [column, "_pos"], ascending=[not numeric, True], na_position="last", kind="stable"
    )
    order = list(flat["_pos"])
    # rows of one search setting stay together (in the order of each setting's best row): the overview never
    # interleaves runs that searched different corpora
    first = {}
    for i in order:
        first.setdefault(rows[i].search, len(first))
    order.sort(key=lambda i: first[rows[i].search])
    board.rows = [rows[i] for i in order]
    board.frame = frame.iloc[order]
    return board


def uses_search(task: str) -> bool:
    tasks = all_tasks()
    return task in tasks and "search" in tasks[task].tools


def rankings(board: Board, task: str) -> list[tuple[str, list[Row]]]:
    """One ranking per search setting of ``task`` (one in all for a task without search), each labelled,
    each in the board's order: runs with different search settings never share a list."""
    metric = board.sort.split(".", 1)[1] if board.sort.startswith(f"{task}.") else "f1"
    ascending = not any(metric.endswith(m) for m in ("f1", "em", "judge"))

    def value(r: Row) -> float:
        v = board.frame.loc[r.key].get(f"{task}.{metric}") if f"{task}.{metric}" in board.frame else None
        v = float("nan") if v is None else float(v)
        return math.inf if v != v else (v if ascending else -v)

    members = sorted((r for r in board.rows if task in r.cells), key=value)
    if not uses_search(task):
        return [("none (the task uses no search)", members)] if members else []
    groups: dict[str, list[Row]] = {}
    for r in members:
        groups.setdefault(r.search, []).append(r)
    return list(groups.items())


def judge_text(judge: dict | None) -> str:
    """``accuracy (n, 95 % CI; judge model, prompt)``; empty when not judged."""
    if not judge:
        return ""
    extra = [f"n={judge['n']}"]
    if judge.get("ci95"):
        extra.append(f"95% CI {_span(judge['ci95'])}")
    return f"{pct(judge['accuracy'])} ({', '.join(extra)}; {judge['model']}, {judge['prompt']} prompt)"


# --- text outputs ------------------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    return "" if x is None or x != x else f"{100 * x:.2f}"


def cell_text(entry: Entry | None, split: str = "all") -> str:
    """``F1 / EM`` (percent; † when reported), then n and the 95 % bootstrap interval of each."""
    if entry is None or split not in entry.scores:
        return ""
    part = entry.scores[split]
    text = f"{pct(part['f1'])} / {pct(part['em'])}{KIND_MARK.get(entry.kind, '')}"
    n = part.get("n", entry.n if split == "all" else None)
    extra = [f"n={n}"] if n is not None else []
    if part.get("f1_ci") and part.get("em_ci"):
        extra.append(f"95% CI {_span(part['f1_ci'])} / {_span(part['em_ci'])}")
    return f"{text} ({', '.join(extra)})" if extra else text


def _span(ci: list[float]) -> str:
    return f"{pct(ci[0])}–{pct(ci[1])}"


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|~"})


def md_escape(text: object) -> str:
    """Any field as inert Markdown text: HTML escaped (no tags reach the page), Markdown syntax escaped, one line."""
    flat = " ".join(str("" if text is None else text).split())
    return html.escape(flat, quote=False).translate(_MD_SPECIAL)


def _md_table(headers: list[str], body: list[list[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(md_escape(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in body]
    return lines


MARKER = "<!-- made by matbench leaderboard --write: regenerate it, do not edit (matbench replaces only files with this line) -->"


def to_markdown(board: Board, *, title: str = "matbench leaderboard") -> str:
    """The overview (F1 / EM per task), one ranking per (task, search setting) with splits and the judge
    column, the literature's judge accuracies apart, then each row's provenance."""
    lines = [
        f"# {title}",
        MARKER,
        "",
        "Scores are percent, F1 / EM, under each row's scoring (`visual-arft` = the Visual-ARFT authors' rules).",
        "Rows come from `leaderboard/submissions/`: `run` entries are matbench runs validated and rescored by",
        "`matbench submit`; `reference` entries are the authors' published predictions, rescored by matbench;",
        "cells marked † are `reported`: not rescored by matbench. Each cell gives n and the 95 % bootstrap",
        "interval. A task is ranked once per search setting (runs that searched different corpora are never",
        "ranked together); only runs on a task's official gold set are ranked. The judge column is LLM-judge",
        "accuracy (judge model and prompt named); the literature's judge accuracies are listed apart, not ranked.",
        "A run's cost is priced from its recorded tokens with matbench's price table.",
        "Regenerate with `matbench leaderboard --write`.",
        "",
    ]
    heads = ["System", "Protocol", "Search", "Scoring"] + [label(t) for t in board.tasks]
    body = [
        [r.system, r.protocol, r.search, r.scoring] + [cell_text(r.cells.get(t)) for t in board.tasks]
        for r in board.rows
    ]
    if body:
        lines += _md_table(heads, body)
    for task in board.tasks:
        for setting, members in rankings(board, task):
            splits = board.splits[task]
            heads = ["#", "System", "n"] + [f"{s} F1 / EM" for s in splits] + ["all F1 / EM", "judge"]
            heads += ["errors", "input errors", "cost ($/sample)"]
            body = []
            for i, r in enumerate(members, 1):
                e = r.cells[task]
                body.append(
                    [str(i), r.system, str(e.n)]
                    + [cell_text(e, s) for s in splits]
                    + [cell_text(e), judge_text(e.judge) or "-", _count(e.errors), _count(e.input_errors)]
                    + [_cost(e, board)]
                )
            lines += ["", f"## {md_escape(label(task))} — search: {md_escape(setting)}", ""]
            lines += _md_table(heads, body)
    lines += literature_markdown(board)
    lines += unofficial_markdown(board)
    lines += ["", "## Provenance", ""]
    for i, r in enumerate(board.rows, 1):
        lines.append(
            f"{i}. **{md_escape(r.system)}** ({md_escape(r.protocol)}, search: {md_escape(r.search)}):"
        )
        for task in board.tasks:
            if task in r.cells:
                e = r.cells[task]
                lines.append(
                    f"   - {md_escape(label(task))} [{md_escape(e.kind)}]: {md_escape(e.provenance)}"
                )
    return "\n".join(lines) + "\n"


def literature_markdown(board: Board) -> list[str]:
    """The literature's judge accuracies per task, as published (in the source's order: not a ranking)."""
    out: list[str] = []
    for task in board.tasks:
        items = [e for e in board.literature if e.task == task]
        if not items:
            continue
        metrics = sorted({e.metric or "" for e in items})
        out += [
            "",
            f"## {md_escape(label(task))} — reported in the literature (not rescored, not ranked)",
            "",
        ]
        out.append(f"Metric: {md_escape('; '.join(metrics))}. Sources are named in the last column.")
        out.append("")
        heads = ["Setting", "System", "judge accuracy", "source"]
        body = [
            [
                str(e.source.get("section") or e.protocol or ""),
                e.name,
                judge_text(e.judge),
                _source_text(e),
            ]
            for e in items
        ]
        out += _md_table(heads, body)
    return out


def _source_text(e: Entry) -> str:
    src = e.source or {}
    parts = [str(src.get("repository") or "")]
    if src.get("commit"):
        parts.append(f"@{str(src['commit'])[:12]}")
    if src.get("file"):
        parts.append(f"{src['file']}")
    return " ".join(p for p in parts if p)


def unofficial_markdown(board: Board) -> list[str]:
    """Runs on data other than the official gold set: listed apart, without a rank."""
    if not board.unofficial:
        return []
    heads = ["System", "Task", "Protocol", "Scoring", "F1 / EM", "why not ranked", "provenance"]
    body = [
        [e.name, label(e.task), e.protocol or "-", e.scoring, cell_text(e), e.unofficial or "", e.provenance]
        for e in board.unofficial
    ]
    return [
        "",
        "## Unofficial runs (not ranked)",
        "",
        "Runs on local, edited or partial data: their numbers are not the task's and are never ranked.",
        "",
    ] + _md_table(heads, body)


def _cost(entry: Entry, board: Board) -> str:
    """A run's cost in $ (and per sample), priced by matbench, or ``unknown price``; references: n/a."""
    from matbench.models.cost import cost_text

    return cost_text(board.costs.get(entry.key)) if entry.kind == "run" else "n/a"


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def to_csv(board: Board) -> str:
    """Flat columns, scores as fractions in [0, 1]; ``<task>.kind`` tells run / reference / reported."""
    flat = board.frame.reset_index()
    for task in board.tasks:
        flat[f"{task}.kind"] = [r.cells[task].kind if task in r.cells else "" for r in board.rows]
    return flat.to_csv(index=False, float_format="%.10g")


def row_object(row: Row, board: Board) -> dict:
    tasks = board.tasks
    out: dict = {k: v for k, v in zip(INDEX, row.key, strict=True)}
    out["tasks"] = {}
    for task in tasks:
        if task not in row.cells:
            continue
        e = row.cells[task]
        out["tasks"][task] = {
            "kind": e.kind,
            "n": e.n,
            "missing": e.missing,
            "errors": e.errors,
            "input_errors": e.input_errors,
            "scores": e.scores,
            "cost": board.costs.get(e.key),
            "judge": e.judge,
            "task_version": e.task_version,
            "provenance": e.provenance,
            "key": e.key,
        }
    return out


def to_json(board: Board) -> str:
    apart = [
        {"system": e.name, "task": e.task, "why": e.unofficial, "n": e.n, "scores": e.scores, "key": e.key}
        for e in board.unofficial
    ]
    literature = [
        {
            "system": e.name,
            "task": e.task,
            "metric": e.metric,
            "judge": e.judge,
            "source": e.source,
            "key": e.key,
        }
        for e in board.literature
    ]
    rank = {
        task: [
            {"search": setting, "systems": [r.system for r in rows]}
            for setting, rows in rankings(board, task)
        ]
        for task in board.tasks
    }
    return json.dumps(
        {
            "tasks": board.tasks,
            "rows": [row_object(r, board) for r in board.rows],
            "rankings": rank,
            "literature": literature,
            "unofficial": apart,
        },
        indent=2,
    )
