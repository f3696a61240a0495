"""Proof of faithfulness: `matbench eval` with no protocol flags sends, turn by turn, byte for byte, the request
text (and image) that the authors' evaluation loop builds from the same model outputs.

The reference loops below are written from reading the authors' scripts (`evaluation_mat_search_*_visual_arft.py`,
`evaluation_*_ngpu_7b_visual_arft.py`, `evaluation_mat_coding_visual_arft.py`): one user message per turn,
their string glue, their regexes (no DOTALL), their `if '<answer>' / elif '<search>'` without an else, their
`if '<problem>'` + `if '<code>'`, and the exec of the code in-process. The instruction texts and tips come
from the fixture (`../shared/fixtures/protocol/`), matbench reads its own from the authors' scripts.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, decode_data_url, request_image_urls, request_text
from runtime_helpers import RetrievalServer, fake_args, read_jsonl, run_eval

ANSWER = r"<answer>\s*(.*?)\s*</answer>"
SEARCH = r"<search>\s*(.*?)\s*</search>"
PROBLEM = r"<problem>\s*\{(.*?)\}\s*</problem>"
CODE = r"<code>\s*```python(.*?)```.*?</code>"
_B = r"((?:[^\[\]:]|(?:\[[^\[\]]*\]))+?)"
SLICE = rf"\[\s*{_B}\s*:\s*{_B}\s*,\s*{_B}\s*:\s*{_B}\s*\]"
BOX = r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]"
MAX_CALLS = 5
PASSAGES = [
    ("Citibank", "Citibank was founded in 1812."),
    ("Madison", "James Madison was president in 1812."),
]


def _search_reference(instructions: str, question: str, outputs: list[str], snippets: list[str]):
    """The authors' search loop for one sample: (request texts, search queries, prediction)."""
    text = instructions + "\n" + f"<query> {question} </query>"
    sent: list[str] = []
    queries: list[str] = []
    prediction = None
    query = None
    for out in outputs[:MAX_CALLS]:
        sent.append(text)
        if "<answer>" in out:
            m = re.search(ANSWER, out)
            prediction = m.group(1).strip() if m else None
            break
        elif "<search>" in out:
            m = re.search(SEARCH, out)
            if m:
                query = m.group(1).strip()
            assert query is not None, "scenario would crash the authors' script on its first sample"
            queries.append(query)
            block = "<information> "
            for i, snippet in enumerate(snippets):
                block += f"{i + 1}." + " " + "Content:" + snippet
            block += " </information> "
            text = text + "\n" + out + "\n" + block
    return sent, queries, prediction


def _coding_reference(instructions: str, tips: dict, row: dict, images: Path, outputs: list[str], work: Path):
    """The authors' coding loop for one sample: ([(request text, image bytes or None)], prediction).

    Image None: their loop would send a `cache.jpg` that this sample never wrote (stale or missing).
    """
    image: Path | None = images / (
        row["ori_image_path"] if row["type"][0] == "crop" else row["processed_image_path"]
    )
    cache = work / f"cache-{row['id']}.jpg"
    text = instructions + f"<query> {row['question']} <query>"
    sent: list[tuple[str, bytes | None]] = []
    problems: list[str] = []
    prediction = None
    for out in outputs[:MAX_CALLS]:
        sent.append((text, image.read_bytes() if image is not None and image.is_file() else None))
        if "<answer>" in out:
            m = re.search(ANSWER, out)
            prediction = m.group(1).strip() if m else None
            break
        if "<problem>" in out:
            m = re.search(PROBLEM, out, re.DOTALL)
            problems = sorted(re.findall(r"'([^']+)'", m.group(1))) if m else []
            if problems[0] == "crop":
                tip = tips["crop"]
            elif problems[0] == "none":
                tip = tips["none"]
            else:
                tip = tips["other"].replace("{problems}", str(problems))
            text = text + "\n" + out + "\n" + tip
        if "<code>" in out:
            src = out.replace("path_to_input_image.jpg", str(image)).replace(
                "path_to_output_image.jpg", str(cache)
            )
            if problems[0] == "crop":
                from PIL import Image

                with Image.open(image) as im:
                    width, height = im.size
                x1, y1, x2, y2 = (int(v) for v in re.findall(BOX, row["question"])[0])
                box = (
                    int(x1 / 1000 * width),
                    int(y1 / 1000 * height),
                    int(x2 / 1000 * width),
                    int(y2 / 1000 * height),
                )
                src = re.sub(SLICE, f"[{box[1]}:{box[3]}, {box[0]}:{box[2]}]", src)
            m = re.search(CODE, src, re.DOTALL)
            ok = False
            if m:
                cache.unlink(missing_ok=True)
                try:
                    exec(m.group(1), {"__builtins__": __builtins__}, {})
                    ok = True
                except Exception:  # noqa: BLE001 - as theirs: a failing snippet only leaves the image as it was
                    ok = False
            text = text + "\n" + out
            if ok:
                image = cache if cache.is_file() else None
    return sent, prediction


class ScriptedModel:
    """Answers each request with the next scripted output of the sample whose question the text contains."""

    def __init__(self, scripts: dict[str, list[str]]):
        self.scripts = scripts
        self.calls: dict[str, list[dict]] = {q: [] for q in scripts}
        self.lock = threading.Lock()

    def __call__(self, req: dict) -> str:
        text = request_text(req)
        owners = [q for q in self.scripts if f" {q} <" in text]
        assert len(owners) == 1, text[-300:]
        with self.lock:
            seen = self.calls[owners[0]]
            seen.append(req)
            return self.scripts[owners[0]][len(seen) - 1]


def _think(s: str) -> str:
    return f"<think> {s} </think>\n"


def _code(body: str) -> str:
    return _think("fix it") + "<code>\n```python\n" + body + "\n```\n</code>"


SEARCH_SCENARIOS = {
    "test_0": [  # a normal search, then the answer
        _think("find the year") + "<search> Citibank founded year </search>",
        _think("1812") + "<answer> James Madison </answer>",
    ],
    "test_1": [  # a turn with no tag leaves the text unchanged
        _think("I am not sure what to do"),
        _think("search") + "<search> first spacecraft Uranus </search>",
        _think("done") + "<answer> Titan IIIE </answer>",
    ],
    "test_2": [  # an unclosed <search> searches again with the last query
        _think("one") + "<search> first query </search>",
        _think("two") + "<search> second query that is never closed",
        _think("three") + "<answer> x </answer>",
    ],
    "test_3": [  # a multi-line answer
        _think("one") + "<search> some query </search>",
        _think("two") + "<answer> line one\nline two </answer>",
    ],
    "test_4": [f"{_think(str(i))}<search> query number {i} </search>" for i in range(6)],  # the 5-call limit
}


def _search_run(tmp_path: Path, fixtures_dir: Path, *extra: str):
    rows = {
        json.loads(line)["id"]: json.loads(line)
        for line in (fixtures_dir / "multihop/bamboogle/test.jsonl").open()
    }
    scripts = {rows[i]["question"]: SEARCH_SCENARIOS[i] for i in SEARCH_SCENARIOS}
    model = ScriptedModel(scripts)
    with RetrievalServer(PASSAGES) as rs, FakeOpenAIServer(model) as srv:
        out = run_eval(
            [
                *fake_args(srv, "bamboogle", str(fixtures_dir / "multihop")),
                "--ids",
                ",".join(SEARCH_SCENARIOS),
                "--search",
                f"retriever:{rs.url}",
                "--search-cache",
                "off",
                "--no-response-cache",
                "--run-dir",
                str(tmp_path / "run"),
                *extra,
            ],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
    instructions = (fixtures_dir / "protocol" / "visual-arft-search-instructions.txt").read_text()
    records = {r["id"]: r for r in read_jsonl(tmp_path / "run" / "predictions.jsonl")}
    return rows, model, rs, records, instructions


@pytest.mark.parametrize("compat", ["fixed", "strict"])
def test_search_turn_by_turn(tmp_path, fixtures_dir, compat):
    extra = ("--compat", "strict") if compat == "strict" else ()
    rows, model, rs, records, instructions = _search_run(tmp_path, fixtures_dir, *extra)
    all_queries = []
    for sid, outputs in SEARCH_SCENARIOS.items():
        question = rows[sid]["question"]
        want, queries, prediction = _search_reference(
            instructions, question, outputs, [t for _, t in PASSAGES]
        )
        got = [request_text(r) for r in model.calls[question]]
        assert len(got) == len(want), sid
        for turn, (g, w) in enumerate(zip(got, want, strict=True), 1):
            assert g == w, f"{sid} turn {turn} differs"
        all_queries += queries
        rec = records[sid]
        if compat == "fixed" and sid == "test_3":
            assert prediction is None and rec["prediction"] == "line one\nline two"  # the documented fix
        else:
            assert rec["prediction"] == prediction, sid
    assert sorted(rs.queries) == sorted(all_queries)
    assert len(model.calls[rows["test_4"]["question"]]) == MAX_CALLS


def _coding_scenarios() -> dict[str, list[str]]:
    rotate = (
        "import cv2\nimg = cv2.imread('path_to_input_image.jpg')\nimg = cv2.rotate(img, cv2.ROTATE_180)\n"
    )
    rotate += "cv2.imwrite('path_to_output_image.jpg', img)"
    crop = "import cv2\nimg = cv2.imread('path_to_input_image.jpg')\nimg = img[10:20, 30:img.shape[1]]\n"
    crop += "cv2.imwrite('path_to_output_image.jpg', img)"
    return {
        "12": [  # <problem> and <code> in one output
            _think("upside down") + "<problem> {'rotation180'} </problem>\n" + _code(rotate),
            _think("read") + "<answer> 1 Can (473ml) </answer>",
        ],
        "22": [  # a failing snippet
            _think("dark") + "<problem> {'dark'} </problem>",
            _code("import cv2\nimg = cv2.imread('path_to_input_image.jpg')\nraise ValueError('boom')"),
            _think("read") + "<answer> 16734841 </answer>",
        ],
        "63": [  # `none` problems
            _think("fine") + "<problem> {'none'} </problem>",
            _think("read") + "<answer> Uncommon Valor </answer>",
        ],
        "71": [  # code that writes no image
            _think("two issues") + "<problem> {'rotation90', 'dark'} </problem>",
            _code("import cv2\nimg = cv2.imread('path_to_input_image.jpg')\nprint(img.shape)"),
            _think("read") + "<answer> 00134721 </answer>",
        ],
        "119": [  # a crop rewrite
            _think("small text") + "<problem> {'crop'} </problem>",
            _code(crop),
            _think("read") + "<answer> SINCE 1994 </answer>",
        ],
        "124": [  # no-tag turns and the 5-call limit, with a crop on the way
            _think("let me look"),
            _think("crop") + "<problem> {'crop'} </problem>",
            _code(crop),
            _think("hmm"),
            _think("hmm again"),
            _think("never sent") + "<answer> x </answer>",
        ],
    }


def test_coding_turn_by_turn(tmp_path, fixtures_dir):
    data = tmp_path / "data"
    shutil.copytree(fixtures_dir / "mat" / "coding-demo", data)
    table = json.loads((data / "MAT-Coding.json").read_text())
    assert table[0]["id"] == 12
    table[0]["type"] = ["rotation180", "crop"]  # crop listed but not first: the processed image, as theirs
    (data / "MAT-Coding.json").write_text(json.dumps(table, ensure_ascii=False))
    rows = {str(r["id"]): r for r in table}
    scenarios = _coding_scenarios()
    model = ScriptedModel({rows[i]["question"]: outs for i, outs in scenarios.items()})
    with FakeOpenAIServer(model) as srv:
        out = run_eval(
            [
                *fake_args(srv, "mat-coding", str(data)),
                "--no-response-cache",
                "--seed",
                "7",
                "--run-dir",
                str(tmp_path / "run"),
            ],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
    proto = json.loads((fixtures_dir / "protocol" / "visual-arft-protocol.json").read_text())
    instructions = (fixtures_dir / "protocol" / "visual-arft-coding-instructions.txt").read_text()
    records = {r["id"]: r for r in read_jsonl(tmp_path / "run" / "predictions.jsonl")}
    work = tmp_path / "reference"
    work.mkdir()
    for sid, outputs in scenarios.items():
        want, prediction = _coding_reference(
            instructions, proto["coding"]["tips"], rows[sid], data, outputs, work
        )
        got = model.calls[rows[sid]["question"]]
        assert len(got) == len(want), sid
        previous = None
        for turn, (req, (text, image)) in enumerate(zip(got, want, strict=True), 1):
            assert request_text(req) == text, f"{sid} turn {turn}: text differs"
            (url,) = request_image_urls(req)
            sent = decode_data_url(url)[1]
            if image is None:  # theirs: a cache.jpg this sample never wrote; matbench keeps the last image
                assert sent == previous, f"{sid} turn {turn}"
            else:
                assert sent == image, f"{sid} turn {turn}: image differs"
            previous = sent
        assert records[sid]["prediction"] == prediction, sid
    crop = records["119"]["trajectory"][1]["tool_calls"][-1]
    assert crop["ok"] and crop["crop_box"] is not None and "img[" in crop["input"]
    # what the run recorded: the faithful defaults, and exactly what went over the wire besides the messages
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["protocol"]["name"] == "visual-arft" and cfg["protocol"]["wording"] == "authors"
    assert cfg["options"]["compat"] == "fixed" and cfg["options"]["exec_scope"] == "authors"
    assert ["np", "numpy", None] in cfg["options"]["exec_globals"]
    assert cfg["sandbox"]["timeout"] == 60 and cfg["sandbox"]["exec_scope"] == "authors"
    assert cfg["decoding"]["sent"] == {"max_tokens": 1024, "temperature": 0.0, "seed": 7}
    for req in got:
        assert {k: v for k, v in req.items() if k not in ("messages", "model")} == cfg["decoding"]["sent"]
    assert cfg["task"]["revision"] is None and cfg["task"]["revision_pinned"] is None  # local data
