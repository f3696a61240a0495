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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,024 rows``: counts read as English."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def score_table(result: dict) -> str:
    """Rows per split then `all`, from a ``matbench score --json`` object."""
    rows = [[name, part["n"], pct(part["f1"]), pct(part["em"])] for name, part in result["splits"].items()]
    rows.append(["all", result["n"], pct(result["f1"]), pct(result["em"])])
    head = f"{result['task']}  scoring={result['scoring']}  missing predictions={result['missing']}"
    errors = int(result.get("errors") or 0)
    if errors:
        # API errors are not scores: F1/EM are over the scored samples only, and the table says so
        head += f"  API errors={errors} (not scored; rerun them with --retry-errors)"
    from matbench.scoring.base import labels_of  # display sits below every package: no import at load time

    headers = ["split", "n", *labels_of(str(result["scoring"]))]
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
