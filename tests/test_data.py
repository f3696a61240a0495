"""Loaders read the real fixture rows with their images; bad input is reported, never dropped."""

from __future__ import annotations

import json
import shutil

import pytest
from runtime_helpers import run_cli

from matbench.data.loaders import load_samples
from matbench.errors import InputError, MatbenchError
from matbench.scoring.predictions import score_file
from matbench.tasks import all_tasks, get_task


def test_six_tasks():
    assert set(all_tasks()) == {
        "mat-search",
        "mat-coding",
        "2wikimultihopqa",
        "hotpotqa",
        "musique",
        "bamboogle",
    }
    out = run_cli(["tasks"])
    assert out.returncode == 0, out.stderr
    for name in all_tasks():
        assert name in out.stdout


def test_mat_coding_demo(fixtures_dir):
    samples = load_samples(get_task("mat-coding"), data_dir=fixtures_dir / "mat" / "coding-demo")
    by_id = {s.id: s for s in samples}
    assert sorted(by_id, key=int) == ["12", "22", "63", "71", "119", "124"]
    assert all(s.input_error is None for s in samples)
    assert by_id["119"].image.name == "crop_8_ori.png"  # crop items use the original image
    assert by_id["12"].image.name == "rotation180_1_proc.png"
    assert by_id["71"].metadata["type"] == ["rotation90", "dark"]
    assert by_id["71"].split == "hard" and by_id["12"].split == "simple"
    assert by_id["124"].answers == ["Spaghetti\nGOEMON"]


def test_mat_search_demo(fixtures_dir):
    samples = load_samples(get_task("mat-search"), data_dir=fixtures_dir / "mat" / "search-demo")
    by_id = {s.id: s for s in samples}
    assert by_id["1"].answers == ["Play well."] and by_id["1"].split == "simple"
    assert by_id["1"].image.is_file() and by_id["1001"].split is None
    assert all(s.input_error is None for s in samples)


@pytest.mark.parametrize(
    "task,file,n", [("bamboogle", "bamboogle/test.jsonl", 125), ("musique", "musique/dev.jsonl", 2417)]
)
def test_flashrag(fixtures_dir, task, file, n):
    samples = load_samples(get_task(task), data_dir=fixtures_dir / "multihop")
    assert len(samples) == n and samples[0].answers and samples[0].split is None
    same = load_samples(get_task(task), data_file=fixtures_dir / "multihop" / file)
    assert [s.id for s in same] == [s.id for s in samples]


def test_bad_rows_are_reported(tmp_path, fixtures_dir):
    src = fixtures_dir / "mat" / "coding-demo"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    rows = json.loads((src / "MAT-Coding.json").read_text())
    rows[1]["processed_image_path"] = "nope.png"  # missing image
    (tmp_path / "broken.png").write_bytes(b"not an image")
    rows[2]["processed_image_path"] = "broken.png"  # unreadable image
    rows.append(dict(rows[0]))  # duplicate id
    rows.append({"id": 500, "question": "q"})  # malformed row
    (tmp_path / "MAT-Coding.json").write_text(json.dumps(rows))
    samples = load_samples(get_task("mat-coding"), data_dir=tmp_path)
    assert len(samples) == len(rows)  # nothing silently dropped
    errors = {s.id: s.input_error for s in samples if s.input_error}
    assert "image not found" in errors["22"] and "row 2" in errors["22"]
    assert "unreadable image" in errors["63"]
    assert "duplicate id 12" in [e for e in errors.values() if "duplicate" in e][0]
    assert "missing field(s)" in errors["500"] and "MAT-Coding.json, row 8" in errors["500"]


def test_flashrag_bad_lines_are_rows_not_the_end_of_the_file(tmp_path):
    """A line that is not UTF-8 or not JSON is that row's input error; the rows after it still load."""
    good = [{"id": f"dev_{i}", "question": f"q{i}", "golden_answers": [f"a{i}"]} for i in range(3)]
    lines = [json.dumps(good[0]).encode(), b'{"id": "dev_x", "question": "caf\xe9"}', b"{oops", b"   ",
             b"null", json.dumps(good[1]).encode(), json.dumps(good[2]).encode()]
    path = tmp_path / "dev.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    samples = load_samples(get_task("hotpotqa"), data_file=path)
    assert [s.id for s in samples if not s.input_error] == ["dev_0", "dev_1", "dev_2"]
    errors = [s.input_error for s in samples if s.input_error]
    assert len(errors) == 3  # the blank line is no row
    assert "dev.jsonl, row 2: not valid UTF-8 text" in errors[0]
    assert "dev.jsonl, row 3: not valid JSON" in errors[1]
    assert "row is not an object" in errors[2]


def test_not_json(tmp_path):
    (tmp_path / "MAT-Search.json").write_text("{oops")
    with pytest.raises(InputError, match="MAT-Search.json: not valid JSON"):
        load_samples(get_task("mat-search"), data_dir=tmp_path)


def test_offline_hub_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(MatbenchError) as exc:
        load_samples(get_task("mat-coding"))
    msg = str(exc.value)
    assert "laolao77/MAT" in msg and "--data-dir" in msg and "HF_HUB_OFFLINE" in msg
    assert "\n" not in msg
    # the command current huggingface_hub ships (`huggingface-cli` is gone from it)
    assert "hf download laolao77/MAT" in msg and "huggingface-cli" not in msg


def test_hub_path_from_prefilled_cache(monkeypatch, tmp_path, fixtures_dir):
    """The real huggingface_hub code path, served from a pre-filled cache in offline mode."""
    cache = tmp_path / "hub"
    repo = cache / "datasets--laolao77--MAT"
    commit = "0" * 40
    snap = repo / "snapshots" / commit / "MAT-Benchmark"
    (snap / "MAT-Coding-image").mkdir(parents=True)
    src = fixtures_dir / "mat" / "coding-demo"
    shutil.copy(src / "MAT-Coding.json", snap / "MAT-Coding.json")
    for img in src.glob("*.png"):
        shutil.copy(img, snap / "MAT-Coding-image" / img.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    samples = load_samples(get_task("mat-coding"))
    assert len(samples) == 6 and all(s.input_error is None for s in samples)


def test_score_errors(tmp_path, fixtures_dir):
    spec = get_task("mat-coding")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": 1, "gt": ["a"]}]')
    with pytest.raises(InputError, match="bad.json, row 1: row has no prediction field"):
        score_file(bad, spec)
    bad.write_text('[{"id": 999, "gt": ["a"], "pred_answer": "a"}]')
    with pytest.raises(InputError, match="id 999 is not in task mat-coding"):
        score_file(bad, spec)
    bad.write_text("not json")
    with pytest.raises(InputError, match="not valid JSON"):
        score_file(bad, spec)
    out = run_cli(["score", str(bad), "--task", "mat-coding"])
    assert out.returncode == 2 and "bad.json" in out.stderr and "Traceback" not in out.stderr
    # ids checked against a loaded dataset: bamboogle's file has no ids, rows map by position
    res = score_file(
        fixtures_dir / "predictions/visual-arft/7b_step200_bamboogle_web_n4.json",
        get_task("bamboogle"),
        samples=load_samples(get_task("bamboogle"), data_dir=fixtures_dir / "multihop"),
    )
    assert res["n"] == 125
