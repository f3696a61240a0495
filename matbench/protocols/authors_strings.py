"""The authors' prompt strings, read from their evaluation scripts with ``ast`` and checked by sha256.

A script is parsed, never run. The strings are found by the shape of the authors' code (the assignment to
``system_prompt``, the ``input_text = ...`` concatenations inside the ``'<search>' in result`` branch, the
``problems_list[0] == 'crop'`` chain, ...) and rendered into matbench templates: string constants stay as
written, f-string parts and concatenated names become ``{placeholders}`` (``input_text`` -> ``{text}``,
``result`` -> ``{output}``, ...). Every rendered string must match the sha256 recorded below for the pinned
commit; a changed upstream file is refused in one line naming the file and the string.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from matbench.errors import ConfigError
from matbench.protocols.authors_source import (
    AUTHORS_COMMIT,
    AUTHORS_REPO,
    ScriptFile,
    fetch_script,
    pinned_file_problem,
)
from matbench.protocols.templates import _PLACEHOLDER, REQUIRED, Templates

# sha256 of every string matbench uses, at AUTHORS_COMMIT (a set where the task scripts differ).
EXPECTED: dict[str, frozenset[str]] = {
    k: frozenset(v.split())
    for k, v in {
        "coding.instructions": "3c1c524530c200c1c4882cfd3bf9434e9a882fb2b711d9775d8c3d2504d04305",
        "coding.first": "b76a8e092a5beba8f89563a4b0cf619880b190260b6a22f0907db51ea0b57392",
        "coding.after_problem": "7a2f127ad6ddfc6e0422a9ccdb6a67bcf26a633076f1032dca56e923a276f6c9",
        "coding.after_code": "d095636f8184b974e285f604993e6e791b12578ca907c152282810e3d0b90dec",
        "coding.tips.crop": "9792a00c940c22a8e1cafc01df24a7c220c22f9cd7dbd232443e901b034030b2",
        "coding.tips.none": "997ac76802841fc87365923f6c2be66b310559e1486f2defed92290d5f332268",
        "coding.tips.other": "341e4e293305f1952bc4415ed64602a1b365f3f64f3a0bce37b2b76044672caa",
        "search.instructions": "e6f2a9309e7f67862609de8c4bf6de5032ac06caba93925777386fdffd8342c3",
        "search.first": "ec7692e2458d58fb4e09cc3b534e57097293339acc4368e8f00577870fd8f315",
        "search.after_search": "0997e392c1945294cc613132a1b2556c30a0217dc15a9e376e64d85901183cdc",
        "search.after_answer": "d095636f8184b974e285f604993e6e791b12578ca907c152282810e3d0b90dec",
        "search.information.header": "7b72d3b9aeab8ac507b51c7141035cbe9034d12a30b42d32e8912bc7f410137e",
        "search.information.item": "7e4594acd19f1d27deefcd71b54c5663eb06c2a92f289907b6df454f596bab90",
        "search.information.footer": "8cfef6a4bac95cc29beca480b5f1a0850e961e603202dfb05e519fff36789a2e",
        # MAT tasks ("answer directly, very brief") and the four multi-hop sets ("only return the answer").
        "direct.instructions": "dc5c544d9727209b5838961abb9933ddaf4c5e6cdad18c70a5f763fd3054a994 "
        "fa605f0be374d44896c9011be1eab43b801a0f26cbc54d1cb946075fc9d5c6fa",
        "direct.first": "ae54890a383774ca8aa7f08de138580fc0bd3007cbd7812e1523b9d3c77bdfe7",
    }.items()
}

# How the authors' variable names and expressions map to matbench placeholders, per layout.
_NAMES = {
    "coding": {
        "input_text": "text",
        "result": "output",
        "query": "question",
        "system_prompt": "instructions",
        "problems_list": "problems",
    },
    "search": {
        "input_text": "text",
        "result": "output",
        "query": "question",
        "system_prompt": "instructions",
        "format_search_results": "information",
        "index + 1": "i",
        "item['body']": "snippet",
    },
    "direct": {"query": "question"},
}


# sha256 of the exec scope each of the authors' coding scripts gives model code (its imports, as a run records
# them in options.exec_globals), at AUTHORS_COMMIT
PINNED_IMPORTS = {
    "Visual-ARFT/evaluation_coding/evaluation_mat_coding_visual_arft.py":
        "a034d326b881a171920afc480c38c0d3a2a9e2db2c49a3e9e4854a12291d1c84",
}


def imports_sha256(imports: object) -> str:
    return sha256(json.dumps(imports, separators=(",", ":")))


def pinned_run_problem(config: dict) -> str | None:
    """Why a run's recorded authors' script or exec scope is not the pinned one (``submit``), or None."""
    protocol = config.get("protocol") if isinstance(config.get("protocol"), dict) else {}
    source = protocol.get("source") if isinstance(protocol.get("source"), dict) else None
    if source is not None and source.get("repo") == AUTHORS_REPO:
        problem = pinned_file_problem(source)
        if problem:
            return f"the authors' script: {problem}"
    options = config.get("options") if isinstance(config.get("options"), dict) else {}
    scope, seeded = options.get("exec_scope"), options.get("exec_globals")
    if scope == "authors":
        pinned = PINNED_IMPORTS.get(str((source or {}).get("file")))
        if pinned is None or imports_sha256(seeded) != pinned:
            return "exec scope 'authors' with imports that are not the pinned script's"
    elif seeded not in (None, []):
        return f"exec scope {scope!r} with seeded imports"
    return None


class _Shape(Exception):
    """The script does not have the shape matbench reads (a different file or version)."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- rendering ---------------------------------------------------------------------------------------------
def _operands(node: ast.expr) -> list[ast.expr]:
    """``a + b + c`` -> [a, b, c] (string concatenation as the authors wrote it)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _operands(node.left) + _operands(node.right)
    return [node]


def _render(node: ast.expr, names: dict[str, str]) -> str:
    parts = []
    for op in _operands(node):
        if isinstance(op, ast.Constant) and isinstance(op.value, str):
            parts.append(_literal(op.value, names))
        elif isinstance(op, ast.JoinedStr):
            for piece in op.values:
                if isinstance(piece, ast.Constant) and isinstance(piece.value, str):
                    parts.append(_literal(piece.value, names))
                elif (
                    isinstance(piece, ast.FormattedValue) and piece.conversion == -1 and not piece.format_spec
                ):
                    parts.append("{" + _name(piece.value, names) + "}")
                else:
                    raise _Shape(f"an f-string part {ast.unparse(piece)!r} matbench cannot render")
        else:
            parts.append("{" + _name(op, names) + "}")
    return "".join(parts)


def _name(node: ast.expr, names: dict[str, str]) -> str:
    src = ast.unparse(node)
    if src not in names:
        raise _Shape(f"an unexpected expression {src!r} in a prompt string")
    return names[src]


def _literal(text: str, names: dict[str, str]) -> str:
    """A literal must not contain a ``{placeholder}`` that matbench would later fill."""
    clash = [m.group(0) for m in _PLACEHOLDER.finditer(text) if m.group(1) in set(names.values())]
    if clash:
        raise _Shape(f"a literal contains {clash[0]!r}, which matbench uses as a placeholder")
    return text


# --- finding the authors' statements -------------------------------------------------------------------------
def _assigns(tree: ast.AST, target: str) -> list[ast.Assign | ast.AugAssign]:
    found: list[ast.Assign | ast.AugAssign] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == target for t in node.targets
        ):
            found.append(node)
        elif (
            isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == target
        ):
            found.append(node)
    return found


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _one(items: list, what: str):
    if len(items) != 1:
        raise _Shape(f"expected one {what}, found {len(items)}")
    return items[0]


def _tag_branch(tree: ast.AST, tag: str) -> ast.If:
    """The ``if '<tag>' in result:`` statement."""

    def is_test(test: ast.expr) -> bool:
        return (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Constant)
            and test.left.value == tag
            and isinstance(test.ops[0], ast.In)
            and isinstance(test.comparators[0], ast.Name)
            and test.comparators[0].id == "result"
        )

    return _one(
        [n for n in ast.walk(tree) if isinstance(n, ast.If) and is_test(n.test)], f"`if '{tag}' in result`"
    )


def _first_label_branch(tree: ast.AST, label: str) -> ast.If:
    """The ``if problems_list[0] == '<label>':`` statement (the tips chain)."""

    def is_test(test: ast.expr) -> bool:
        return (
            isinstance(test, ast.Compare)
            and ast.unparse(test.left) == "problems_list[0]"
            and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == label
        )

    return _one(
        [n for n in ast.walk(tree) if isinstance(n, ast.If) and is_test(n.test)],
        f"`if problems_list[0] == '{label}'`",
    )


def _string_constant(tree: ast.Module, name: str) -> str:
    node = _one([n for n in _assigns(tree, name) if n in tree.body], f"module-level `{name} = ...`")
    if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
        raise _Shape(f"`{name}` is not a string constant")
    return node.value.value


def _first_text(tree: ast.AST, names: dict[str, str], uses: str) -> str:
    starts = [
        n for n in _assigns(tree, "input_text") if isinstance(n, ast.Assign) and _mentions(n.value, uses)
    ]
    return _render(_one(starts, f"`input_text = ...{uses}...`").value, names)


def _branch_text(branch: ast.If, names: dict[str, str], what: str) -> str:
    """The one text every ``input_text = ...`` in the branch's body builds (an elif is not the body)."""
    rendered = {_render(n.value, names) for stmt in branch.body for n in _assigns(stmt, "input_text")}
    return _one(sorted(rendered), f"`input_text = ...` in {what}")


def _split_tip(node: ast.Assign, names: dict[str, str]) -> tuple[str, str]:
    """``input_text + '\\n' + result + '\\n' + f'<tips>..' + '\\n'`` -> (layout with {tips}, the tip)."""
    ops = _operands(node.value)
    at = _one([i for i, op in enumerate(ops) if isinstance(op, ast.JoinedStr)], "f-string tip")
    head = "".join(_render(op, names) for op in ops[:at])
    tip = "".join(_render(op, names) for op in ops[at:])
    return head + "{tips}", tip


def _extract_coding(tree: ast.Module) -> dict:
    names = _NAMES["coding"]
    crop = _first_label_branch(tree, "crop")
    none = _first_label_branch(tree, "none")
    if crop.orelse != [none] or not none.orelse:
        raise _Shape("the tips chain is not `crop` / elif `none` / else")
    layouts, tips = set(), {}
    for key, body in (("crop", crop.body), ("none", none.body), ("other", none.orelse)):
        node = _one([s for s in body if isinstance(s, ast.Assign)], f"tip assignment ({key})")
        layout, tips[key] = _split_tip(node, names)
        layouts.add(layout)
    return {
        "layout": "coding",
        "instructions": _string_constant(tree, "system_prompt"),
        "first": _first_text(tree, names, "system_prompt"),
        "after_problem": _one(sorted(layouts), "layout of the three tips"),
        "after_code": _branch_text(_tag_branch(tree, "<code>"), names, "the <code> branch"),
        # No branch for an output with none of the tags: the text stays as it was.
        "after_other": "{text}",
        "tips": tips,
        "imports": _imports(tree),
    }


def _extract_search(tree: ast.Module) -> dict:
    names = _NAMES["search"]
    answer = _tag_branch(tree, "<answer>")
    search = _tag_branch(tree, "<search>")
    if answer.orelse != [search] or search.orelse:
        raise _Shape("the turn is not `if <answer>` / `elif <search>` without an else")
    info = [n for stmt in search.body for n in _assigns(stmt, "format_search_results")]
    header = _one([n for n in info if isinstance(n, ast.Assign)], "`format_search_results = ...`")
    adds = [n for n in info if isinstance(n, ast.AugAssign)]
    item = _one([n for n in adds if _mentions(n.value, "item")], "`format_search_results += ...item...`")
    footer = _one([n for n in adds if n is not item], "closing `format_search_results += ...`")
    return {
        "layout": "search",
        "instructions": _string_constant(tree, "system_prompt"),
        "first": _first_text(tree, names, "system_prompt"),
        "after_search": _branch_text(search, names, "the <search> branch"),
        "after_answer": _branch_text(answer, names, "the <answer> branch"),
        "after_other": "{text}",  # their loop has no else branch: a turn without a tag changes nothing
        "information": {
            "header": _render(header.value, names),
            "item": _render(item.value, names),
            "separator": "",
            "footer": _render(footer.value, names),
        },
    }


def _extract_direct(tree: ast.Module) -> dict:
    names = _NAMES["direct"]
    node = _one([n for n in _assigns(tree, "input_text") if isinstance(n, ast.Assign)], "`input_text = ...`")
    ops = _operands(node.value)
    last = ops[-1]
    if not (isinstance(last, ast.Constant) and isinstance(last.value, str)):
        raise _Shape("the direct prompt does not end with a string constant")
    head = "".join(_render(op, names) for op in ops[:-1])
    return {"layout": "direct", "instructions": last.value, "first": head + "{instructions}"}


def _imports(tree: ast.Module) -> list[list[str | None]]:
    """``[name, module, attribute]`` for every module-level import: what their ``globals()`` held."""
    seen: list[list[str | None]] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    seen.append([a.asname, a.name, None])
                else:
                    top = a.name.split(".")[0]
                    seen.append([top, top, None])
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            seen.extend([a.asname or a.name, node.module, a.name] for a in node.names if a.name != "*")
    return seen


_EXTRACTORS = {"coding": _extract_coding, "search": _extract_search, "direct": _extract_direct}


# Structure of matbench's own that the scripts imply (no else branch, no separator): not read, not hashed.
_STRUCTURAL = {"after_other", "information.separator"}


def _strings(data: dict, prefix: str = "") -> dict[str, str]:
    """Every string read from the script, flattened: ``tips.crop`` -> text."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key in ("layout", "imports") or name in _STRUCTURAL:
            continue
        if isinstance(value, dict):
            out.update(_strings(value, name + "."))
        else:
            out[name] = value
    return out


def extract(layout: str, script: ScriptFile) -> dict:
    """The template data of ``layout`` from one script, each string checked against its recorded sha256."""
    where = f"{script.relpath} (from {script.local})" if script.local else f"{script.relpath} (downloaded)"
    try:
        tree = ast.parse(script.data.decode("utf-8"), filename=script.relpath)
        data = _EXTRACTORS[layout](tree)
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: the authors' script does not parse ({exc})") from None
    except _Shape as exc:
        raise ConfigError(
            f"{where}: not the authors' script matbench reads at {AUTHORS_COMMIT[:12]} ({exc})"
        ) from None
    hashes = {}
    for name, text in _strings(data).items():
        key = f"{layout}.{name}"
        digest = sha256(text)
        if digest not in EXPECTED.get(key, ()):
            raise ConfigError(
                f"{where}: the authors' string {key} differs from the one matbench checked at "
                f"{AUTHORS_REPO}@{AUTHORS_COMMIT[:12]} (sha256 {digest[:16]}...); use a copy at that commit"
            )
        hashes[key] = digest
    data["_sha256"] = hashes
    return data


def authors_templates(
    layout: str, relpath: str, *, authors_repo: str | Path | None, cache_dir: Path, timeout: float = 30.0
) -> Templates:
    """Templates made of the authors' exact strings for ``layout``, read from their script ``relpath``."""
    script, data = fetch_script(
        relpath,
        authors_repo=authors_repo,
        cache_dir=cache_dir,
        check=lambda s: extract(layout, s),
        timeout=timeout,
    )
    hashes = data.pop("_sha256")
    missing = [k for k in REQUIRED[layout] if k not in data]
    if missing:  # a bug of matbench's, not of the user's input
        raise AssertionError(f"authors' {layout} templates miss {missing}")
    source = {
        "repo": AUTHORS_REPO,
        "commit": AUTHORS_COMMIT,
        "file": relpath,
        "file_sha256": hashlib.sha256(script.data).hexdigest(),
        "strings_sha256": hashes,
        "via": script.via,
        "path": str(script.local) if script.local else None,
    }
    combined = sha256("\n".join(f"{k}={v}" for k, v in sorted(hashes.items())))
    return Templates(layout, data, Path(script.local or relpath), combined, source=source)
