"""The static leaderboard page: one HTML file, inline CSS and JS only (no outside resources), sortable
columns (click a header), an inline-SVG bar chart per task and each row's provenance. All text is escaped."""

from __future__ import annotations

import html

from matbench.report.leaderboard import MARKER, NO_SEARCH, Board, Row, cell_text, judge_text, label, pct

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232a;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
p.note{color:#555;max-width:900px}
div.wrap{overflow-x:auto;max-width:100%}
table.lb{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
table.lb th,table.lb td{border:1px solid #d8dde3;padding:3px 6px;text-align:right;white-space:nowrap}
table.lb th.g{text-align:center}
table.lb td.t,table.lb th.t{text-align:left}
table.lb thead th{background:#f2f5f8;position:sticky;top:0}
table.lb th[data-col]{cursor:pointer;user-select:none}
table.lb th[data-col]:hover{background:#e3e9ef}
table.lb th[aria-sort=ascending]::after{content:" \\25B2"}
table.lb th[aria-sort=descending]::after{content:" \\25BC"}
table.lb tbody tr:nth-child(even){background:#fafbfc}
td.reported{font-style:italic;color:#7a4b00}
small.ci{display:block;font-size:10px;color:#6a737d}
span.kind{font-size:11px;padding:1px 5px;border-radius:8px;background:#e8eef5;margin-left:4px}
span.kind.reported{background:#fff1d6}span.kind.run{background:#e2f3e5}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.chart{border:1px solid #d8dde3;border-radius:6px;padding:8px 12px}
.chart h3{font-size:14px;margin:0 0 6px}
svg text{font:11px system-ui,sans-serif;fill:#1d232a}
ol.prov li{margin-bottom:6px}ol.prov ul{margin:2px 0;color:#444}
"""

JS = """
(function(){
  function key(td, numeric){
    var v = td.getAttribute('data-v');
    if (numeric) { return (v === null || v === '') ? null : parseFloat(v); }
    return (v === null ? td.textContent : v).toLowerCase();
  }
  document.querySelectorAll('table.lb th[data-col]').forEach(function(th){
    th.addEventListener('click', function(){
      var table = th.closest('table'), body = table.tBodies[0];
      var col = parseInt(th.getAttribute('data-col'), 10);
      var numeric = th.getAttribute('data-type') === 'num';
      var current = th.getAttribute('aria-sort');
      var dir = current ? (current === 'ascending' ? 'descending' : 'ascending')
                        : (numeric ? 'descending' : 'ascending');
      table.querySelectorAll('th[aria-sort]').forEach(function(o){ o.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir);
      var sign = dir === 'ascending' ? 1 : -1;
      var rows = Array.prototype.slice.call(body.rows).map(function(tr, i){
        return {tr: tr, i: i, k: key(tr.cells[col], numeric)};
      });
      rows.sort(function(a, b){
        if (a.k === null && b.k === null) return a.i - b.i;
        if (a.k === null) return 1;
        if (b.k === null) return -1;
        if (a.k < b.k) return -sign;
        if (a.k > b.k) return sign;
        return a.i - b.i;
      });
      rows.forEach(function(r){ body.appendChild(r.tr); });
    });
  });
})();
"""


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _columns(board: Board, tasks: list[str]) -> list[tuple[str, str, str | None, str]]:
    """(header, task, split, metric) for every numeric column."""
    cols = []
    for task in tasks:
        cols += [("F1", task, "all", "f1"), ("EM", task, "all", "em")]
        for s in board.splits[task]:
            cols += [(f"{s} F1", task, s, "f1"), (f"{s} EM", task, s, "em")]
        cols += [("judge", task, None, "judge")]
        cols += [("n", task, None, "n"), ("errors", task, None, "errors")]
        cols += [("$/sample", task, None, "cost_per_sample")]
    return cols


def _value(board: Board, row: Row, task: str, split: str | None, metric: str) -> float | int | None:
    e = row.cells.get(task)
    if e is None:
        return None
    if split is None:
        if metric == "cost_per_sample":
            return (board.costs.get(e.key) or {}).get("per_sample_usd")
        if metric == "judge":
            return (e.judge or {}).get("accuracy")
        return e.n if metric == "n" else e.errors
    part = e.scores.get(split)
    return None if part is None else part[metric]


def _table(board: Board, rows: list[Row], table_id: str) -> str:
    tasks = [t for t in board.tasks if any(t in r.cells for r in rows)]
    cols = _columns(board, tasks)
    info = ["System", "Protocol", "Search", "Scoring"]
    top = [f'<th class="t" colspan="{len(info)}"></th>']
    for task in tasks:
        width = sum(1 for c in cols if c[1] == task)
        top.append(f'<th class="g" colspan="{width}">{_e(label(task))}</th>')
    heads = [f'<th class="t" data-col="{i}" data-type="text">{_e(h)}</th>' for i, h in enumerate(info)]
    heads += [
        f'<th data-col="{len(info) + i}" data-type="num" title="{_e(label(task))} {_e(h)}">{_e(h)}</th>'
        for i, (h, task, _s, _m) in enumerate(cols)
    ]
    body = []
    for row in rows:
        kinds = sorted({e.kind for e in row.cells.values()})
        badge = "".join(f'<span class="kind {_e(k)}">{_e(k)}</span>' for k in kinds)
        cells = [
            f'<td class="t" data-v="{_e(row.system)}"><b>{_e(row.system)}</b>{badge}</td>',
            f'<td class="t">{_e(row.protocol)}</td>',
            f'<td class="t">{_e(row.search)}</td>',
            f'<td class="t">{_e(row.scoring)}</td>',
        ]
        for _h, task, split, metric in cols:
            v = _value(board, row, task, split, metric)
            e = row.cells.get(task)
            if v is None:
                cells.append('<td data-v="">n/a</td>' if e is not None else '<td data-v=""></td>')
                continue
            shown = (
                pct(v)
                if metric in ("f1", "em", "judge")
                else (f"{v:.4f}" if metric == "cost_per_sample" else str(v))
            )
            klass = ' class="reported"' if e is not None and e.kind == "reported" else ""
            mark = "†" if klass and metric in ("f1", "em") else ""
            title = f' title="{_e(e.provenance)}"' if e is not None else ""
            ci = (e.scores.get(split) or {}).get(f"{metric}_ci") if e is not None and split else None
            if metric == "judge" and e is not None and e.judge:
                ci = e.judge.get("ci95")
                title = f' title="{_e(judge_text(e.judge))}"'
            interval = f'<small class="ci">{pct(ci[0])}–{pct(ci[1])}</small>' if ci else ""
            cells.append(f'<td{klass} data-v="{v}"{title}>{_e(shown)}{mark}{interval}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="wrap"><table class="lb" id="{table_id}"><thead><tr>'
        + "".join(top)
        + "</tr><tr>"
        + "".join(heads)
        + "</tr></thead><tbody>"
        + "\n".join(body)
        + "</tbody></table></div>"
    )


def _tables(board: Board) -> str:
    """One sortable table per search setting: sorting never puts runs with different settings in one list."""
    groups: dict[str, list[Row]] = {}
    for row in board.rows:
        groups.setdefault(row.search, []).append(row)
    out = []
    for i, (setting, rows) in enumerate(groups.items()):
        table_id = "leaderboard" if i == 0 else f"leaderboard-{i + 1}"
        shown = "none (tasks without search)" if setting == NO_SEARCH else setting
        out.append(f'<h2 class="setting">Search: {_e(shown)}</h2>' + _table(board, rows, table_id))
    return "".join(out)


def _literature(board: Board) -> str:
    """The literature's judge accuracies, as published, in the source's order (not a ranking)."""
    if not board.literature:
        return ""
    parts = ["<h2>Reported in the literature: judge accuracy (not rescored, not ranked)</h2>"]
    for task in board.tasks:
        items = [e for e in board.literature if e.task == task]
        if not items:
            continue
        metrics = "; ".join(sorted({e.metric or "" for e in items}))
        rows = "".join(
            f'<tr><td class="t">{_e(e.source.get("section") or e.protocol)}</td><td class="t">{_e(e.name)}</td>'
            f'<td title="{_e(judge_text(e.judge))}">{_e(pct(e.judge["accuracy"]))}'
            f'<small class="ci">{_e(judge_text(e.judge))}</small></td>'
            f'<td class="t">{_e(e.provenance)}</td></tr>'
            for e in items
        )
        parts.append(
            f'<h3>{_e(label(task))}</h3><p class="note">{_e(metrics)}</p>'
            f'<div class="wrap"><table class="lb literature"><thead><tr><th class="t">Setting</th>'
            '<th class="t">System</th><th>judge accuracy</th><th class="t">source</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    return "".join(parts)


def _chart(board: Board, task: str) -> str:
    """Horizontal bars: F1 (dark) and EM (light) per row, 0-100."""
    members = [r for r in board.rows if task in r.cells]
    if not members:
        return ""
    members.sort(key=lambda r: -r.cells[task].scores["all"]["f1"])
    name_w, bar_w, row_h = 170, 260, 30
    height = row_h * len(members) + 4
    parts = [
        f'<svg width="{name_w + bar_w + 70}" height="{height}" role="img" aria-label="{_e(label(task))} F1 and EM">'
    ]
    for i, r in enumerate(members):
        e = r.cells[task]
        y = 6 + i * row_h
        f1, em = e.scores["all"]["f1"], e.scores["all"]["em"]
        mark = "†" if e.kind == "reported" else ""
        parts.append(f'<text x="0" y="{y + 13}">{_e(r.system[:26])}{mark}</text>')
        parts.append(
            f'<rect x="{name_w}" y="{y}" width="{bar_w * f1:.1f}" height="12" fill="#2f6db5">'
            f"<title>F1 {pct(f1)}</title></rect>"
        )
        parts.append(
            f'<rect x="{name_w}" y="{y + 13}" width="{bar_w * em:.1f}" height="9" fill="#9cc1ea">'
            f"<title>EM {pct(em)}</title></rect>"
        )
        parts.append(f'<text x="{name_w + bar_w * f1 + 4:.1f}" y="{y + 11}">{pct(f1)}</text>')
    parts.append("</svg>")
    return f'<div class="chart"><h3>{_e(label(task))} <small>F1 (dark) / EM (light)</small></h3>{"".join(parts)}</div>'


def _provenance(board: Board) -> str:
    items = []
    for r in board.rows:
        sub = "".join(
            f"<li>{_e(label(t))} [{_e(r.cells[t].kind)}]: {_e(r.cells[t].provenance)}</li>"
            for t in board.tasks
            if t in r.cells
        )
        items.append(
            f"<li><b>{_e(r.system)}</b> ({_e(r.protocol)}, search: {_e(r.search)})<ul>{sub}</ul></li>"
        )
    return '<ol class="prov">' + "".join(items) + "</ol>"


def _unofficial(board: Board) -> str:
    """Runs on local, edited or partial data: listed apart, never ranked."""
    if not board.unofficial:
        return ""
    rows = "".join(
        f'<tr><td class="t">{_e(e.name)}</td><td class="t">{_e(label(e.task))}</td>'
        f'<td>{_e(cell_text(e))}</td><td class="t">{_e(e.unofficial)}</td></tr>'
        for e in board.unofficial
    )
    return (
        '<h2>Unofficial runs (not ranked)</h2><p class="note">Runs on local, edited or partial data: their '
        "numbers are not the task's.</p>"
        '<div class="wrap"><table class="lb" id="unofficial"><thead><tr><th class="t">System</th>'
        '<th class="t">Task</th><th>F1 / EM</th><th class="t">why not ranked</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def render_page(board: Board, *, title: str = "matbench leaderboard") -> str:
    return (
        f'<!DOCTYPE html>\n{MARKER}\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        "<p class=\"note\">Percent scores under each row's scoring (visual-arft = the Visual-ARFT authors' rules). "
        "<b>run</b>: a matbench run validated and rescored by <code>matbench submit</code>; <b>reference</b>: the "
        "authors' published predictions rescored by matbench; <b>reported</b> (†, italic): computed from files "
        "not available here, not rescored by matbench. Small print under a score: its 95% bootstrap interval. "
        "One table per search setting: runs that searched different corpora are never ranked together. "
        "<b>judge</b>: LLM-judge accuracy (hover for n, interval, judge model and prompt). "
        "Only runs on a task's official gold set are ranked. Click a column header to sort.</p>"
        + _tables(board)
        + '<h2>Per task</h2><div class="charts">'
        + "".join(_chart(board, t) for t in board.tasks)
        + "</div>"
        + _literature(board)
        + _unofficial(board)
        + "<h2>Provenance</h2>"
        + _provenance(board)
        + f"<script>{JS}</script></body></html>\n"
    )
