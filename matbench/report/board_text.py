"""The leaderboard for a terminal: one compact ranking per (task, search setting) that fits ``WIDTH`` columns
(``--ci`` adds the 95 % intervals), then the literature's judge accuracies, not ranked."""

from __future__ import annotations

from matbench.report.entries import Entry
from matbench.report.leaderboard import KIND_MARK, Board, label, pct, rankings

WIDTH = 100


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _score(part: dict | None, metric: str, ci: bool) -> str:
    if not part or part.get(metric) is None:
        return "-"
    text = pct(part[metric])
    interval = part.get(f"{metric}_ci")
    if ci and interval:
        text += f" [{pct(interval[0])},{pct(interval[1])}]"
    return text


def _judge(judge: dict | None, ci: bool) -> str:
    if not judge:
        return "-"
    return _score({"acc": judge["accuracy"], "acc_ci": judge.get("ci95")}, "acc", ci)


def _cost(entry: Entry, board: Board) -> str:
    cost = board.costs.get(entry.key) or {}
    if entry.kind != "run":
        return "n/a"
    per = cost.get("per_sample_usd")
    return "unknown" if per is None else f"${per:.4f}"


def _table(heads: list[str], rows: list[list[str]], left: set[int], width: int) -> list[str]:
    """Columns sized to their content; the first left-aligned column (the system) gives way to fit ``width``."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    squeeze = min(left) if left else None
    total = sum(widths) + 2 * (len(widths) - 1)
    if total > width and squeeze is not None:
        widths[squeeze] = max(8, widths[squeeze] - (total - width))

    def line(cells: list[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            c = _fit(c, widths[i])
            out.append(c.ljust(widths[i]) if i in left else c.rjust(widths[i]))
        return "  ".join(out).rstrip()

    return [line(heads)] + [line(r) for r in rows]


def to_text(board: Board, *, ci: bool = False, width: int = WIDTH) -> str:
    lines: list[str] = []
    for task in board.tasks:
        for setting, members in rankings(board, task):
            lines += ["", _fit(f"{label(task)} — search: {setting}", width)]
            heads = ["#", "System", "n", "F1", "EM", "judge", "$/sample"]
            rows = []
            for i, r in enumerate(members, 1):
                e = r.cells[task]
                part = e.scores.get("all")
                mark = KIND_MARK.get(e.kind, "")
                rows.append(
                    [str(i), r.system + mark, str(e.n), _score(part, "f1", ci), _score(part, "em", ci)]
                    + [_judge(e.judge, ci), _cost(e, board)]
                )
            lines += _table(heads, rows, {1}, width)
        items = [e for e in board.literature if e.task == task]
        if items:
            lines += [
                "",
                _fit(f"{label(task)} — judge accuracy reported in the literature (not ranked)", width),
            ]
            rows = [
                [str(e.source.get("section") or e.protocol or ""), e.name, _judge(e.judge, ci)] for e in items
            ]
            lines += _table(["Setting", "System", "accuracy"], rows, {0, 1}, width)
    if board.unofficial:
        n = len(board.unofficial)
        lines += ["", f"{n} unofficial {'entry' if n == 1 else 'entries'} (not ranked): see --format md"]
    if any(e.kind == "reported" for r in board.rows for e in r.cells.values()):
        lines += ["", "† reported: not rescored by matbench"]
    return "\n".join(lines).lstrip("\n") + "\n"
