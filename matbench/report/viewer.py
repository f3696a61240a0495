"""``matbench view``: one self-contained HTML report of a run.

The summary table, then every sample: question, gold and predicted answer, F1/EM, status, and each turn of its
trajectory (thinking, action, search query and snippets, code with stdout/stderr/error, problem labels and
tips, input and produced images as thumbnails that open full size). Client-side filters: outcome, split,
degradation type, tool used. Outcome: ``correct`` = EM 1, ``error`` = status error or input_error, ``wrong`` =
everything else (partial F1 included). Every piece of model or data text is escaped: it is untrusted.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import quote, urlparse

from matbench.records import RunDir
from matbench.report.thumbs import Thumbnailer
from matbench.scoring import Scored, aggregate

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px;color:#1d232a}
h1{font-size:20px;margin:0 0 6px}table.sum{border-collapse:collapse;margin:8px 0 14px}
table.sum td,table.sum th{border:1px solid #d8dde3;padding:3px 8px;text-align:right}
table.sum td:first-child,table.sum th:first-child{text-align:left}
.meta{color:#555;margin-bottom:6px}.meta b{color:#1d232a}
.filters{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #d8dde3;z-index:2}
.filters label{margin-right:14px}
section.sample{border:1px solid #d8dde3;border-radius:6px;margin:10px 0;padding:8px 12px}
section.sample[data-outcome=correct]{border-left:5px solid #2e9d4a}
section.sample[data-outcome=wrong]{border-left:5px solid #c98a12}
section.sample[data-outcome=error]{border-left:5px solid #c0392b}
.sh{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}.sh .id{font-weight:700}
.badge{font-size:11px;padding:1px 6px;border-radius:8px;background:#eef2f6}
.q{margin:4px 0}.kv{margin:2px 0}.kv b{display:inline-block;min-width:84px}
pre{background:#f6f8fa;padding:6px 8px;border-radius:4px;white-space:pre-wrap;word-break:break-word;margin:4px 0;
max-height:320px;overflow:auto}
.turn{border-top:1px dashed #d8dde3;padding:6px 0}.turn h4{margin:0 0 4px;font-size:13px}
.imgs{display:flex;gap:10px;flex-wrap:wrap}.imgs figure{margin:0}.imgs figcaption{font-size:11px;color:#555}
.imgs img{max-width:256px;max-height:256px;border:1px solid #d8dde3}
ol.results li{margin-bottom:4px}.err{color:#c0392b}.ok{color:#2e9d4a}.missing{color:#999;font-style:italic}
"""

JS = """
(function(){
  var ids = ['f-outcome', 'f-split', 'f-type', 'f-tool'];
  function has(list, v){ return (' ' + list + ' ').indexOf(' ' + v + ' ') >= 0; }
  function apply(){
    var o = document.getElementById('f-outcome').value, s = document.getElementById('f-split').value;
    var t = document.getElementById('f-type').value, u = document.getElementById('f-tool').value;
    var shown = 0;
    document.querySelectorAll('section.sample').forEach(function(el){
      var ok = (!o || el.getAttribute('data-outcome') === o) && (!s || el.getAttribute('data-split') === s)
        && (!t || has(el.getAttribute('data-types'), t)) && (!u || has(el.getAttribute('data-tools'), u));
      el.hidden = !ok; if (ok) shown++;
    });
    document.getElementById('shown').textContent = shown;
  }
  ids.forEach(function(id){ document.getElementById(id).addEventListener('change', apply); });
  apply();
})();
"""


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _pre(text: object, klass: str = "") -> str:
    if text in (None, ""):
        return ""
    cls = f' class="{klass}"' if klass else ""
    return f"<pre{cls}>{_e(text)}</pre>"


def _pct(x: object) -> str:
    return f"{100 * float(x):.2f}" if isinstance(x, (int, float)) else ""


def outcome(rec: dict) -> str:
    if rec.get("status", "ok") != "ok":
        return "error"
    return "correct" if float(rec.get("em") or 0) >= 1 else "wrong"


def tools_used(rec: dict) -> list[str]:
    used = [name for name, count in (rec.get("tool_calls") or {}).items() if count]
    return sorted(used) or ["none"]


def types_of(rec: dict) -> list[str]:
    t = (rec.get("metadata") or {}).get("type") or []
    return [str(x) for x in (t if isinstance(t, list) else [t])]


class Report:
    """Renders one run; images go through a :class:`Thumbnailer`."""

    def __init__(self, run_dir: Path, base_dir: Path | None = None):
        self.run = RunDir(run_dir)
        self.thumbs = Thumbnailer(self.run.path)
        self.base_dir = (base_dir or self.run.path).resolve()

    # --- pieces ------------------------------------------------------------------------------------------
    def _href(self, path: Path) -> str:
        """A link to ``path`` relative to the report's folder (the run directory by default)."""
        return quote(Path(os.path.relpath(path.resolve(), self.base_dir)).as_posix())

    def image(self, ref: str | None, caption: str) -> str:
        if not ref:
            return ""
        thumb = self.thumbs.thumb(str(ref))
        if thumb is None:
            return f'<figure><span class="missing">missing image {_e(ref)}</span><figcaption>{_e(caption)}</figcaption></figure>'
        return (
            f'<figure><a href="{_e(self._href(self.thumbs.source(str(ref))))}" target="_blank" rel="noopener">'
            f'<img src="{_e(self._href(self.run.path / thumb))}" alt="{_e(caption)}" loading="lazy"></a>'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )

    def tool(self, tool: dict | None) -> str:
        if not tool:
            return ""
        name = tool.get("name")
        if name == "search":
            items = []
            for r in tool.get("results") or []:
                url = str(r.get("url") or "")
                link = (
                    f' <a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{_e(url)}</a>'
                    if urlparse(url).scheme in ("http", "https")
                    else (f" {_e(url)}" if url else "")
                )
                items.append(f"<li><b>{_e(r.get('title'))}</b>{link}<br>{_e(r.get('snippet'))}</li>")
            cached = " (cached)" if tool.get("cached") else ""
            out = f'<div class="kv"><b>search{cached}</b> {_e(tool.get("input"))}</div>'
            out += (
                f'<ol class="results">{"".join(items)}</ol>'
                if items
                else '<div class="missing">no results</div>'
            )
            return out + (_pre(tool.get("error"), "err") if tool.get("error") else "")
        if name == "code":
            state = '<span class="ok">ok</span>' if tool.get("ok") else '<span class="err">failed</span>'
            wall = tool.get("wall_time")
            out = (
                f'<div class="kv"><b>code</b> {state}'
                + (f" {float(wall):.2f}s" if wall is not None else "")
                + "</div>"
            )
            out += _pre(tool.get("input"))
            for label in ("stdout", "stderr"):
                if tool.get(label):
                    out += f'<div class="kv"><b>{label}</b></div>' + _pre(tool.get(label))
            if tool.get("error"):
                out += '<div class="kv"><b>error</b></div>' + _pre(tool.get("error"), "err")
            return out
        if name == "problem":
            labels = ", ".join(str(p) for p in tool.get("problems") or []) or "none"
            return f'<div class="kv"><b>problem</b> {_e(labels)}</div>' + _pre(tool.get("tips"))
        return f'<div class="kv"><b>{_e(name)}</b></div>' + _pre(
            json.dumps(tool, ensure_ascii=False, indent=1)
        )

    def native_calls(self, t: dict) -> str:
        """``--protocol tools`` turns: every function call, its raw arguments and the text sent back."""
        out = ""
        for call in t.get("tool_calls") or []:
            out += f'<div class="kv"><b>call</b> {_e(call.get("function"))}({_e(call.get("arguments"))})</div>'
            if call.get("name"):
                out += self.tool(call)
            if call.get("result") is not None:
                out += '<div class="kv"><b>result</b></div>' + _pre(call.get("result"))
        return out

    def turn(self, t: dict) -> str:
        tool = t.get("tool") or {}
        images = self.image(t.get("image"), "input" if t.get("turn") == 1 else f"turn {t.get('turn')} input")
        images += self.image(tool.get("output_image"), f"turn {t.get('turn')} code output")
        for call in t.get("tool_calls") or []:
            images += self.image(call.get("output_image"), f"turn {t.get('turn')} code output")
        tokens = t.get("tokens") or {}
        head = (
            f"turn {_e(t.get('turn'))} · {_e(t.get('action'))}"
            + (f" · {_e(tokens.get('input'))}+{_e(tokens.get('output'))} tokens" if tokens else "")
            + (f" · {float(t['latency']):.2f}s" if isinstance(t.get("latency"), (int, float)) else "")
            + (" · cached" if t.get("cached") else "")
        )
        body = ""
        if t.get("think"):
            body += '<div class="kv"><b>think</b></div>' + _pre(t.get("think"))
        if t.get("answer") is not None:
            body += f'<div class="kv"><b>answer</b> {_e(t.get("answer"))}</div>'
        body += self.tool(t.get("tool")) + self.native_calls(t)
        if t.get("error"):
            body += '<div class="kv"><b>error</b></div>' + _pre(t.get("error"), "err")
        if images:
            body += f'<div class="imgs">{images}</div>'
        body += f"<details><summary>raw output</summary>{_pre(t.get('output'))}</details>"
        return f'<div class="turn"><h4>{head}</h4>{body}</div>'

    @staticmethod
    def sample_images(traj: list[dict]) -> list[tuple[str, str]]:
        """The input image and each image the code produced, in order, each once: shown side by side."""
        seen: dict[str, str] = {}
        for t in traj:
            if t.get("image") and t["image"] not in seen:
                seen[t["image"]] = "input" if not seen else f"turn {t.get('turn')} input"
            for call in [t.get("tool") or {}, *(t.get("tool_calls") or [])]:
                out = call.get("output_image")
                if out and out not in seen:
                    seen[out] = f"turn {t.get('turn')} code output"
        return list(seen.items())

    def sample(self, rec: dict) -> str:
        types = types_of(rec)
        tools = tools_used(rec)
        status = rec.get("status", "ok")
        attrs = (
            f'data-outcome="{outcome(rec)}" data-split="{_e(rec.get("split") or "")}" '
            f'data-types="{_e(" ".join(types))}" data-tools="{_e(" ".join(tools))}" id="s-{_e(rec.get("id"))}"'
        )
        calls = ", ".join(f"{k}×{v}" for k, v in (rec.get("tool_calls") or {}).items()) or "no tool calls"
        head = (
            f'<div class="sh"><span class="id">#{_e(rec.get("id"))}</span>'
            f'<span class="badge">{_e(outcome(rec))}</span><span class="badge">{_e(status)}</span>'
            f"<span>F1 {_pct(rec.get('f1'))} · EM {_pct(rec.get('em'))}</span>"
            f"<span>{_e(rec.get('split') or '')}</span><span>{_e(' + '.join(types))}</span>"
            f"<span>{_e(rec.get('turns'))} turn(s), {_e(calls)}</span></div>"
        )
        gold = " | ".join(str(g) for g in rec.get("gold") or [])
        body = (
            f'<div class="q">{_e(rec.get("question"))}</div>'
            f'<div class="kv"><b>gold</b> {_e(gold)}</div>'
            f'<div class="kv"><b>prediction</b> '
            + (
                _e(rec.get("prediction"))
                if rec.get("prediction") is not None
                else '<span class="missing">none</span>'
            )
            + "</div>"
        )
        if rec.get("error"):
            body += '<div class="kv"><b>error</b></div>' + _pre(rec.get("error"), "err")
        traj = rec.get("trajectory") or []
        strip = "".join(self.image(ref, cap) for ref, cap in self.sample_images(traj))
        if strip:
            body += f'<div class="imgs">{strip}</div>'
        turns = "".join(self.turn(t) for t in traj)
        if turns:
            body += f"<details><summary>trajectory ({len(traj)} turns)</summary>{turns}</details>"
        return f'<section class="sample" {attrs}>{head}{body}</section>'

    def summary(self, records: list[dict], config: dict) -> str:
        from matbench.tasks import all_tasks

        spec = all_tasks().get(str((config.get("task") or {}).get("name")))
        scored = [
            Scored(
                str(r.get("id")),
                r.get("split"),
                float(r.get("f1") or 0),
                float(r.get("em") or 0),
                missing=r.get("prediction") is None,
            )
            for r in records
        ]
        agg = aggregate(scored, spec.splits.names if spec else ())
        rows = [(name, part) for name, part in agg["splits"].items()] + [("all", agg)]
        body = "".join(
            f"<tr><td>{_e(name)}</td><td>{part['n']}</td><td>{_pct(part['f1'])}</td><td>{_pct(part['em'])}</td></tr>"
            for name, part in rows
        )
        counts = {k: sum(outcome(r) == k for r in records) for k in ("correct", "wrong", "error")}
        model = config.get("model") or {}
        proto = config.get("protocol") or {}
        search = config.get("search") or {}
        meta = (
            f'<div class="meta"><b>task</b> {_e((config.get("task") or {}).get("name"))} '
            f"v{_e((config.get('task') or {}).get('version'))} · <b>model</b> {_e(model.get('spec'))} "
            f"({_e(model.get('model'))}, {_e(model.get('backend'))}) · <b>protocol</b> {_e(proto.get('name'))} · "
            f"<b>scoring</b> {_e(config.get('scoring'))} · <b>search</b> {_e(search.get('backend') or '-')} · "
            f"<b>created</b> {_e(config.get('created'))}</div>"
        )
        run = (self.run.read_summary() or {}).get("run") or {}
        extra = " · ".join(
            f"{_e(k)} {_e(json.dumps(v) if isinstance(v, (dict, list)) else v)}"
            for k, v in run.items()
            if k != "model"
        )
        return (
            meta
            + (f'<div class="meta">{extra}</div>' if extra else "")
            + '<table class="sum"><tr><th>split</th><th>n</th><th>F1</th><th>EM</th></tr>'
            + body
            + "</table>"
            + f'<div class="meta">{counts["correct"]} correct (EM 1), {counts["wrong"]} wrong, '
            + f"{counts['error']} error(s); missing predictions: {agg['missing']}</div>"
        )

    def filters(self, records: list[dict]) -> str:
        def select(fid: str, label: str, values: list[str]) -> str:
            opts = '<option value="">all</option>' + "".join(
                f'<option value="{_e(v)}">{_e(v)}</option>' for v in values
            )
            return f'<label>{_e(label)} <select id="{fid}">{opts}</select></label>'

        splits = sorted({str(r.get("split")) for r in records if r.get("split")})
        types = sorted({t for r in records for t in types_of(r)})
        tools = sorted({t for r in records for t in tools_used(r)})
        return (
            '<div class="filters">'
            + select("f-outcome", "outcome", ["correct", "wrong", "error"])
            + select("f-split", "split", splits)
            + select("f-type", "degradation type", types)
            + select("f-tool", "tool used", tools)
            + f'<span><b id="shown">{len(records)}</b> of {len(records)} shown</span></div>'
        )

    def render(self) -> str:
        config = self.run.read_config()
        records = self.run.read_records()
        title = f"matbench report: {self.run.path.resolve().name}"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"
            + self.summary(records, config)
            + self.filters(records)
            + "\n".join(self.sample(r) for r in records)
            + f"<script>{JS}</script></body></html>\n"
        )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``); images are linked relative to the report's folder."""
    run_dir = Path(run_dir)
    target = Path(out) if out else run_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    report = Report(run_dir, target.parent)
    text = report.render()
    target.write_text(text, encoding="utf-8")
    return target
