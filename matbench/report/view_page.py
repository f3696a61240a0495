"""The viewer page: inline CSS and script, the run header, and the compact index as JSON inside the page.

The script lists the filtered index a page of rows at a time and loads a sample's detail from
``<data_dir>/cNNNNN.js`` (a ``<script>`` tag, which works from a local file with no server) only when the
sample is opened. It puts every piece of text into the page with ``textContent``: model and data text is
untrusted. The font stack names CJK fonts so Chinese MAT-Coding items render as text, not boxes.
"""

from __future__ import annotations

import html
import json

FONTS = (
    'system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","Noto Sans CJK JP",'
    '"Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif'
)
MONO = 'ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,"Noto Sans Mono CJK SC","Noto Sans CJK SC",monospace'

CSS = f"""
body{{font:14px/1.45 {FONTS};margin:20px;color:#1d232a}}
h1{{font-size:20px;margin:0 0 6px}}table.sum{{border-collapse:collapse;margin:8px 0 14px}}
table.sum td,table.sum th{{border:1px solid #d8dde3;padding:3px 8px;text-align:right}}
table.sum td:first-child,table.sum th:first-child{{text-align:left}}
.meta{{color:#555;margin-bottom:6px}}.meta b{{color:#1d232a}}
.filters{{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #d8dde3;z-index:2}}
.filters label{{margin-right:14px}}.pager button{{margin:0 4px}}
table.list{{border-collapse:collapse;width:100%;margin-top:6px}}
table.list td,table.list th{{border-bottom:1px solid #e6e9ed;padding:3px 6px;text-align:left;vertical-align:top}}
tr.row{{cursor:pointer}}tr.row:hover{{background:#f4f7fa}}tr.row.open{{background:#eef3f8}}
td.n{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}td.id{{font-weight:700}}
.badge{{font-size:11px;padding:1px 6px;border-radius:8px;background:#eef2f6;white-space:nowrap}}
.badge.correct{{background:#dcf2e1}}.badge.wrong{{background:#fbecd0}}.badge.error{{background:#f8d9d5}}
.badge.j-correct{{background:#dcf2e1}}.badge.j-incorrect{{background:#fbecd0}}.badge.j-unparsed,.badge.j-error{{background:#f8d9d5}}
div.sample{{border-left:5px solid #d8dde3;padding:4px 12px;margin:4px 0 10px}}
div.sample.correct{{border-color:#2e9d4a}}div.sample.wrong{{border-color:#c98a12}}div.sample.error{{border-color:#c0392b}}
.q{{margin:4px 0}}.kv{{margin:2px 0}}.kv b{{display:inline-block;min-width:84px}}
pre{{font-family:{MONO};background:#f6f8fa;padding:6px 8px;border-radius:4px;white-space:pre-wrap;
word-break:break-word;margin:4px 0;max-height:320px;overflow:auto}}
.turn{{border-top:1px dashed #d8dde3;padding:6px 0}}.turn h4{{margin:0 0 4px;font-size:13px}}
.imgs{{display:flex;gap:10px;flex-wrap:wrap}}.imgs figure{{margin:0}}.imgs figcaption{{font-size:11px;color:#555}}
.imgs img{{max-width:256px;max-height:256px;border:1px solid #d8dde3}}
ol.results li{{margin-bottom:4px}}.err{{color:#c0392b}}.ok{{color:#2e9d4a}}.missing{{color:#999;font-style:italic}}
"""

JS = r"""
(function(){
'use strict';
var IDX = JSON.parse(document.getElementById('mb-index').textContent);
var rows = IDX.rows, PAGE = IDX.page_size, shown = rows, page = 0, chunks = {}, waiting = {};
function $(id){ return document.getElementById(id); }
function el(tag, cls, text){
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function add(parent){ for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]); return parent; }
function pct(x){ return (100 * x).toFixed(2); }
function pre(text, cls){ return (text === null || text === undefined || text === '') ? null : el('pre', cls || '', text); }
function kv(label, text, cls){ var d = el('div', 'kv'); add(d, el('b', '', label)); if (text !== undefined) add(d, document.createTextNode(' '), el('span', cls || '', text)); return d; }
window.MB = {chunk: function(n, recs){
  var m = {}; recs.forEach(function(r){ m[r.id] = r; }); chunks[n] = m;
  (waiting[n] || []).forEach(function(f){ f(m); }); delete waiting[n];
}};
function load(n, cb){
  if (chunks[n]) { cb(chunks[n]); return; }
  if (waiting[n]) { waiting[n].push(cb); return; }
  waiting[n] = [cb];
  var s = document.createElement('script');
  s.src = IDX.data_dir + '/c' + ('0000' + n).slice(-5) + '.js';
  s.onerror = function(){ (waiting[n] || []).forEach(function(f){ f(null); }); delete waiting[n]; };
  document.head.appendChild(s);
}
function figure(img){
  var f = el('figure');
  if (img.thumb) {
    var a = el('a'); a.href = img.full; a.target = '_blank'; a.rel = 'noopener';
    var i = el('img'); i.src = img.thumb; i.alt = img.caption; i.loading = 'lazy';
    add(f, add(a, i));
  } else {
    add(f, el('span', 'missing', (img.why === 'missing' ? 'missing image ' : 'image not shown (' + img.why + '): ') + img.ref));
  }
  return add(f, el('figcaption', '', img.caption));
}
function images(list){ if (!list || !list.length) return null; var d = el('div', 'imgs'); list.forEach(function(i){ add(d, figure(i)); }); return d; }
function tool(t){
  var d = el('div');
  if (!t) return null;
  if (t.name === 'search') {
    add(d, kv('search' + (t.cached ? ' (cached)' : ''), t.input));
    if (t.results && t.results.length) {
      var ol = el('ol', 'results');
      t.results.forEach(function(r){
        var li = add(el('li'), el('b', '', r.title));
        if (r.href && /^https?:\/\//i.test(r.href)) {
          var a = el('a', '', r.href); a.href = r.href; a.target = '_blank'; a.rel = 'noopener noreferrer';
          add(li, document.createTextNode(' '), a);
        } else if (r.url) add(li, document.createTextNode(' ' + r.url));
        add(ol, add(li, el('br'), document.createTextNode(r.snippet || '')));
      });
      add(d, ol);
    } else add(d, el('div', 'missing', 'no results'));
    return add(d, pre(t.error, 'err'));
  }
  if (t.name === 'code') {
    var head = kv('code'); add(head, document.createTextNode(' '), el('span', t.ok ? 'ok' : 'err', t.ok ? 'ok' : 'failed'));
    if (typeof t.wall_time === 'number') add(head, document.createTextNode(' ' + t.wall_time.toFixed(2) + 's'));
    add(d, head, pre(t.input));
    ['stdout', 'stderr'].forEach(function(k){ if (t[k]) add(d, kv(k), pre(t[k])); });
    if (t.error) add(d, kv('error'), pre(t.error, 'err'));
    return d;
  }
  if (t.name === 'problem') {
    return add(d, kv('problem', (t.problems || []).join(', ') || 'none'), pre(t.tips));
  }
  return add(d, kv(String(t.name)), pre(JSON.stringify(t, null, 1)));
}
function turn(t){
  var head = 'turn ' + t.turn + ' · ' + (t.action || '');
  if (t.tokens) head += ' · ' + t.tokens[0] + '+' + t.tokens[1] + ' tokens';
  if (typeof t.latency === 'number') head += ' · ' + t.latency.toFixed(2) + 's';
  if (t.cached) head += ' · cached';
  var d = add(el('div', 'turn'), el('h4', '', head));
  if (t.think) add(d, kv('think'), pre(t.think));
  if (t.answer !== null && t.answer !== undefined) add(d, kv('answer', t.answer));
  (t.tool_calls || []).forEach(function(c){
    if (c.function) add(d, kv('call', String(c.function) + '(' + (c.arguments || '') + ')'));
    if (c.name) add(d, tool(c));
    if (c.result !== null && c.result !== undefined) add(d, kv('result'), pre(c.result));
  });
  if (t.error) add(d, kv('error'), pre(t.error, 'err'));
  add(d, images(t.images));
  var raw = add(el('details'), el('summary', '', 'raw output'), pre(t.output));
  return add(d, raw);
}
function detail(row, r){
  var d = el('div', 'sample ' + row.outcome);
  if (!r) return add(d, el('div', 'err', 'could not load this sample from ' + IDX.data_dir + '/'));
  add(d, el('div', 'q', r.question), kv('gold', r.gold.join(' | ')));
  if (r.prediction === null) add(d, kv('prediction', 'none', 'missing')); else add(d, kv('prediction', r.prediction));
  if (r.error) add(d, kv('error'), pre(r.error, 'err'));
  if (r.judge) {
    add(d, kv('judge', r.judge.verdict + (r.judge.reason ? ' — ' + r.judge.reason : ''), 'j-' + r.judge.verdict));
    if (r.judge.reply) add(d, add(el('details'), el('summary', '', 'judge reply (' + r.judge.by + ')'), pre(r.judge.reply)));
  }
  add(d, images(r.images));
  if (r.turns.length) {
    var det = add(el('details'), el('summary', '', 'trajectory (' + r.turns.length + ' turns)'));
    det.open = true;
    r.turns.forEach(function(t){ add(det, turn(t)); });
    add(d, det);
  }
  return d;
}
function toggle(tr, row){
  var next = tr.nextSibling;
  if (next && next.classList.contains('detail')) { next.remove(); tr.classList.remove('open'); return; }
  tr.classList.add('open');
  var dtr = el('tr', 'detail'), td = el('td'); td.colSpan = 9; dtr.setAttribute('data-id', row.id);
  add(dtr, td); tr.after(dtr);
  td.textContent = 'loading…';
  load(row.c, function(m){ td.textContent = ''; add(td, detail(row, m && m[row.id])); });
}
function rowEl(row){
  var tr = el('tr', 'row'); tr.id = 's-' + row.id; tr.setAttribute('data-id', row.id);
  var verdict = add(el('td'), el('span', 'badge ' + row.outcome, row.badge));
  if (row.judge) add(verdict, document.createTextNode(' '), el('span', 'badge j-' + row.judge, 'judge: ' + row.judge));
  add(tr, el('td', 'id', '#' + row.id), verdict,
      el('td', 'n', 'F1 ' + pct(row.f1)), el('td', 'n', 'EM ' + pct(row.em)), el('td', '', row.split),
      el('td', '', row.types.join(' + ')), el('td', '', row.turns ? row.turns + ' turn(s), ' + row.calls : ''),
      el('td', 'q', row.q), el('td', row.p === null ? 'missing' : '', row.p === null ? 'none' : row.p));
  tr.addEventListener('click', function(){ toggle(tr, row); });
  return tr;
}
function render(){
  var body = $('rows'), frag = document.createDocumentFragment();
  var pages = Math.max(1, Math.ceil(shown.length / PAGE));
  page = Math.min(Math.max(page, 0), pages - 1);
  shown.slice(page * PAGE, (page + 1) * PAGE).forEach(function(r){ frag.appendChild(rowEl(r)); });
  body.textContent = ''; body.appendChild(frag);
  $('shown').textContent = shown.length;
  $('page').textContent = shown.length ? (page * PAGE + 1) + '–' + Math.min((page + 1) * PAGE, shown.length) : '0';
  $('prev').disabled = page === 0; $('next').disabled = page >= pages - 1;
}
function has(list, v){ return list.indexOf(v) >= 0; }
function value(id){ var e = $(id); return e ? e.value : ''; }
function apply(){
  var o = value('f-outcome'), s = value('f-split'), t = value('f-type'), u = value('f-tool');
  var q = $('f-text').value.trim().toLowerCase();
  shown = rows.filter(function(r){
    return (!o || r.outcome === o) && (!s || r.split === s) && (!t || has(r.types, t)) && (!u || has(r.tools, u))
      && (!q || r.id.toLowerCase() === q || r.q.toLowerCase().indexOf(q) >= 0);
  });
  page = 0; render();
}
['f-outcome', 'f-split', 'f-type', 'f-tool'].forEach(function(id){ if ($(id)) $(id).addEventListener('change', apply); });
$('f-text').addEventListener('input', apply);
$('prev').addEventListener('click', function(){ page--; render(); });
$('next').addEventListener('click', function(){ page++; render(); });
function openHash(){
  var m = /^#s-(.+)$/.exec(decodeURIComponent(location.hash)); if (!m) return;
  var i = shown.findIndex(function(r){ return r.id === m[1]; });
  if (i < 0) { shown = rows; i = rows.findIndex(function(r){ return r.id === m[1]; }); }
  if (i < 0) return;
  page = Math.floor(i / PAGE); render();
  var tr = $('s-' + m[1]); toggle(tr, shown[i]); tr.scrollIntoView();
}
window.addEventListener('hashchange', openHash);
apply(); openHash();
window.MB_READY_MS = performance.now();
document.body.setAttribute('data-ready', '1');
})();
"""


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def script_json(obj: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` can end the element or open a comment."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def select(fid: str, label: str, values: list[str]) -> str:
    opts = '<option value="">all</option>' + "".join(
        f'<option value="{_e(v)}">{_e(v)}</option>' for v in values
    )
    return f'<label>{_e(label)} <select id="{fid}">{opts}</select></label>'


def filters(rows: list[dict]) -> str:
    """Only the filters the task's samples have values for: no split filter for a task without splits, no
    degradation-type filter (MAT-Coding's) for a HotpotQA run, no tool filter when no sample used a tool."""
    splits = sorted({r["split"] for r in rows if r["split"]})
    types = sorted({t for r in rows for t in r["types"]})
    tools = sorted({t for r in rows for t in r["tools"]})
    return (
        '<div class="filters">'
        + select("f-outcome", "outcome", ["correct", "wrong", "error"])
        + (select("f-split", "split", splits) if splits else "")
        + (select("f-type", "degradation type", types) if types else "")
        + (select("f-tool", "tool used", tools) if set(tools) - {"none"} else "")
        + '<label>id or question <input id="f-text" type="search" size="24"></label>'
        + f'<span><b id="shown">{len(rows)}</b> of {len(rows)} match</span>'
        + '<span class="pager"><button id="prev" type="button">‹ prev</button>'
        + '<span id="page"></span><button id="next" type="button">next ›</button></span></div>'
    )


def page(title: str, header: str, rows: list[dict], index: dict, marker: str = "") -> str:
    """The whole page; ``marker`` (an HTML comment right after the doctype) says matbench wrote it."""
    return (
        "<!DOCTYPE html>\n"
        + (f"<!-- {marker} -->\n" if marker else "")
        + '<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"
        + header
        + filters(rows)
        + '<table class="list"><tbody id="rows"></tbody></table>'
        + f'<script type="application/json" id="mb-index">{script_json(index)}</script>'
        + f"<script>{JS}</script></body></html>\n"
    )
