"""Run records stream: readers hold one record at a time, the runner keeps running totals, resume keeps ids."""

from __future__ import annotations

import asyncio
import json

import pytest

from matbench.errors import InputError
from matbench.records.run_dir import RunDir, SampleRecord
from matbench.run.scheduler import run_concurrent
from matbench.scoring.predictions import read_predictions, score_rows
from matbench.scoring.reader import PredRow
from matbench.scoring.totals import RunTotals
from matbench.tasks import get_task


def _rec(rid: str, pred: str | None, gold: list[str], status: str = "ok", **kw) -> SampleRecord:
    return SampleRecord(
        id=rid,
        split=kw.pop("split", None),
        question=f"q {rid}",
        gold=gold,
        prediction=pred,
        f1=0.0,
        em=0.0,
        status=status,
        turns=kw.pop("turns", 1),
        tool_calls=kw.pop("tool_calls", {}),
        tokens=kw.pop("tokens", {"input": 3, "output": 2}),
        trajectory=[{"turn": 1, "output": "x" * 100}],
        **kw,
    )


def _run(tmp_path, records: list[SampleRecord], tail: str = "") -> RunDir:
    run = RunDir(tmp_path / "run")
    run.create({"fingerprint": "f"})
    for r in records:
        run.append(r)
    if tail:
        with run.predictions_path.open("a", encoding="utf-8") as fh:
            fh.write(tail)
    return run


def test_iter_records_latest_per_id_in_first_seen_order(tmp_path):
    run = _run(
        tmp_path,
        [
            _rec("1", None, ["a"], "error"),
            _rec("2", "b", ["b"]),
            _rec("1", "a", ["a"]),
            _rec("3", "c", ["c"]),
        ],
    )
    rows = list(run.iter_records())
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["status"] == "ok" and rows[0]["prediction"] == "a"
    assert [r["id"] for r in run.iter_records(latest=False)] == ["1", "2", "1", "3"]
    assert run.finished_ids() == {"1", "2", "3"}
    assert run.finished_ids(retry_errors=True) == {"1", "2", "3"}  # the latest line of 1 is ok


def test_iter_records_ids_that_need_escaping(tmp_path):
    run = _run(tmp_path, [_rec('a"b\\c', "x", ["x"]), _rec("é 1", "y", ["y"]), _rec('a"b\\c', "z", ["x"])])
    rows = list(run.iter_records())
    assert [r["id"] for r in rows] == ['a"b\\c', "é 1"] and rows[0]["prediction"] == "z"


def test_torn_last_line_ignored_torn_middle_line_refused(tmp_path):
    run = _run(
        tmp_path, [_rec("1", "a", ["a"]), _rec("2", "b", ["b"])], tail='{"id": "3", "gold": ["c"], "pre'
    )
    assert [r["id"] for r in run.iter_records()] == ["1", "2"]
    assert run.finished_ids() == {"1", "2"}
    # a torn retry of an id keeps the earlier complete line of that id
    run2 = _run(tmp_path / "b", [_rec("1", "a", ["a"])], tail='{"id": "1", "gold": ["a"], "predic')
    assert [r["prediction"] for r in run2.iter_records()] == ["a"]
    with run.predictions_path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + json.dumps(_rec("4", "d", ["d"]).to_dict()) + "\n")
    with pytest.raises(InputError, match="row 3"):
        list(run.iter_records())
    with pytest.raises(InputError, match="row 3"):
        run.finished_ids()


def test_running_totals_equal_a_rescore_of_the_file(tmp_path):
    spec = get_task("mat-coding")
    recs = [
        _rec("1", "rotate", ["rotate"], split="simple", tool_calls={"code": 2}, turns=3),
        _rec("2", None, ["dark"], "error", split="simple"),
        _rec("75", "blur x", ["blur"], split="hard", tool_calls={"code": 1, "problem": 1}),
        _rec(
            "2", "dark", ["dark"], split="simple", tokens={"input": 10, "output": 5}
        ),  # a --retry-errors rerun
        _rec("80", None, ["noise"], "input_error", split="hard", turns=0),
    ]
    run = _run(tmp_path, recs)
    live = RunTotals(spec, "visual-arft")
    for r in recs:
        live.add(r.to_dict())
    loaded = RunTotals.from_run(run, spec, "visual-arft")
    expected = score_rows(
        [PredRow.from_record(r, i) for i, r in enumerate(run.read_records(), 1)], spec, "visual-arft"
    )
    for t in (live, loaded):
        s = t.scores()
        assert s == expected
        assert s["n"] == 4 and s["splits"]["simple"]["n"] == 2
        c = t.counts()
        assert c == {
            "errors": 0,
            "input_errors": 1,
            "no_tool_calls": 1,  # one ok sample ran no tool (the input error is not counted)
            "no_answer": 0,
            "calls": 3 + 1 + 1 + 0,
            "tool_calls": {"code": 3, "problem": 1},
            "tool_errors": 0,
            "tokens": {"input": 3 + 3 + 10 + 3, "output": 2 + 2 + 5 + 2},
        }
        assert t.ids() == {"1", "2", "75", "80"}
        assert t.finished_ids(retry_errors=True) == {"1", "2", "75", "80"}
    half = RunTotals(spec, "visual-arft")
    half.add(recs[1].to_dict())
    assert half.finished_ids(retry_errors=True) == set() and half.counts()["errors"] == 1


def test_read_predictions_streams_a_run_file(tmp_path):
    run = _run(tmp_path, [_rec("1", "a", ["a"]), _rec("2", "b", ["b"]), _rec("1", "c", ["a"])])
    rows = read_predictions(run.path)
    assert [(r.id, r.prediction) for r in rows] == [("1", "c"), ("2", "b")]


def test_scheduler_makes_episodes_lazily_at_most_limit_at_once():
    made = []
    live = 0
    peak = 0

    class Ep:
        def __init__(self, i):
            nonlocal live, peak
            made.append(i)
            live += 1
            peak = max(peak, live)
            self.done = False
            self.sample = type("S", (), {"id": str(i)})()

        def request(self):
            return None

        async def advance(self, out):
            await asyncio.sleep(0.001)
            self.done = True

    class Model:
        async def generate(self, reqs):
            await asyncio.sleep(0)
            return [None]

    finished = []

    def on_done(ep):
        nonlocal live
        live -= 1
        finished.append(ep)

    asyncio.run(run_concurrent(((lambda i=i: Ep(i)) for i in range(50)), Model(), 4, on_done))
    assert len(finished) == 50 and sorted(made) == list(range(50))
    assert peak <= 4


def test_image_store_keeps_one_file_per_content(tmp_path):
    from matbench.records.images import ImageStore

    a = tmp_path / "a.PNG"
    a.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    b = tmp_path / "same-bytes-elsewhere.png"
    b.write_bytes(a.read_bytes())
    c = tmp_path / "c.png"
    c.write_bytes(b"\x89PNG\r\n\x1a\n" + b"y" * 100)
    store = ImageStore(tmp_path / "run")
    pa, pb, pc = store.put(a), store.put(b), store.put(c)
    assert pa == pb != pc and pa.read_bytes() == a.read_bytes() and pa.suffix == ".png"
    files = sorted(p for p in (tmp_path / "run" / "images").rglob("*") if p.is_file())
    assert files == sorted([pa, pc])
    assert pa.parent.name == pa.stem[:2] and len(pa.stem) == 64


def test_score_table_latest_wins_in_place():
    from matbench.scoring.table import Scored, ScoreTable, aggregate

    table = ScoreTable()
    table.put("a", "simple", 0.0, 0.0, True)
    table.put("b", "hard", 0.5, 0.0, False)
    table.put("a", "simple", 1.0, 1.0, False)  # a rerun of a
    table.put("c", None, 0.25, 0.0, False)
    assert len(table) == 3 and list(table.index) == ["a", "b", "c"]
    rows = [Scored("a", "simple", 1.0, 1.0), Scored("b", "hard", 0.5, 0.0), Scored("c", None, 0.25, 0.0)]
    assert table.aggregate(["hard", "simple"]) == aggregate(rows, ["hard", "simple"])
    assert table.aggregate()["splits"]["simple"] == {"n": 1, "f1": 1.0, "em": 1.0}


def test_compare_streams_runs_and_pairs_by_row(tmp_path):
    from matbench.report.compare import compare, load_side

    def run(name, preds, golds):
        rd = RunDir(tmp_path / name)
        rd.create({"task": {"name": "bamboogle"}, "scoring": "visual-arft", "fingerprint": name})
        for rid, pred in preds.items():
            rd.append(_rec(rid, pred, golds[rid]))
        return rd.path

    golds = {"1": ["x"], "2": ["y"], "3": ["z"]}
    a = run("a", {"1": "x", "2": "no", "3": "z", "2 ": "q"}, {**golds, "2 ": ["w"]})
    b = run("b", {"3": "z", "2": "y", "1": "no"}, golds)
    c = compare(load_side(a), load_side(b), resamples=50)
    assert (c.paired, c.only_a, c.only_b) == (3, 1, 0)
    assert c.overall.won == 1 and c.overall.lost == 1 and c.overall.tied == 1
    bad = run("bad", {"1": "x"}, {"1": ["not x"]})
    with pytest.raises(InputError, match="sample 1 has different gold answers in A and B"):
        compare(load_side(a), load_side(bad), resamples=50)


def test_score_file_streams_jsonl_latest_line_per_id(tmp_path, fixtures_dir):
    from matbench.scoring.predictions import score_file

    spec = get_task("bamboogle")
    with (fixtures_dir / "multihop/bamboogle/test.jsonl").open() as fh:  # real ids and golds (the task's)
        (a, x), (b, y), (c, z) = [(r["id"], r["golden_answers"]) for r in map(json.loads, list(fh)[:3])]
    lines = [
        {"id": a, "gold": x, "prediction": None},
        {"id": b, "gold": y, "prediction": y[0]},
        {"id": a, "gold": x, "prediction": x[0]},  # a rerun of a
        {"id": c, "gold": z, "prediction": "nope"},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + "\n")
    rows = read_predictions(path)
    assert [(r.id, r.prediction, r.row) for r in rows] == [(a, x[0], 3), (b, y[0], 2), (c, "nope", 4)]
    assert score_file(path, spec) == score_rows(rows, spec, spec.default_scoring)
    assert score_file(path, spec)["n"] == 3 and score_file(path, spec)["em"] == 2 / 3
    path.write_bytes(path.read_bytes() + b'{"id": "d", "gold": ["\xff"], "prediction": "q"}\n')
    with pytest.raises(InputError, match=r"row 6.*not valid UTF-8 text \(byte 0xff at column 23\)"):
        score_file(path, spec)
    path.write_text(json.dumps({"id": "e", "prediction": "p"}) + "\n")
    with pytest.raises(InputError, match="row 1.*no gold field"):
        score_file(path, spec)
    path.write_text("\n")
    with pytest.raises(InputError, match="holds no predictions"):
        score_file(path, spec)
