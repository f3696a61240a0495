"""Plain-text tables for the terminal (percent, two decimals)."""

from __future__ import annotations


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def score_table(result: dict) -> str:
    """Rows per split then `all`, from a ``matbench score --json`` object."""
    rows = [[name, part["n"], pct(part["f1"]), pct(part["em"])] for name, part in result["splits"].items()]
    rows.append(["all", result["n"], pct(result["f1"]), pct(result["em"])])
    head = f"{result['task']}  scoring={result['scoring']}  missing predictions={result['missing']}"
    headers = ["split", "n", "F1", "EM"]
    judge = result.get("judge")
    if judge:  # the LLM judge's accuracy beside F1/EM (its own n: judged samples only)
        cells = {**judge.get("by_split", {}), "all": {"accuracy": judge.get("accuracy"), "n": judge.get("n")}}
        for row in rows:
            cell = cells.get(row[0]) or {}
            acc = cell.get("accuracy")
            row.append("-" if acc is None else f"{pct(acc)} (n={cell.get('n')})")
        headers.append("Judge")
        head += f"  judge={judge.get('model')} prompt={judge.get('prompt')}"
    return head + "\n" + table(headers, rows)
