"""The leaderboard holds against hostile entries and runs (#20.1, #20.3, #20.10, #21.12): a malformed entry is
refused in one line naming the file and the field while the rest builds; a run's cost is priced from the
tokens its trajectories add up to, with matbench's own price table; `--write` replaces only files matbench
made; the terminal table fits 100 columns."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from report_helpers import edit_json, edit_records, make_coding_data, make_coding_run

from matbench.cli import main
from matbench.models.cost import load_prices
from matbench.report import leaderboard_dir, submissions_dir
from matbench.report.board_write import made_by_matbench, png_with_marker
from matbench.report.entries import load_entries
from matbench.run.config import config_fingerprint

SHIPPED = submissions_dir(leaderboard_dir(Path(__file__).resolve().parents[1] / "leaderboard"))
SEVEN = "reference-visual-arft-7b-mat-search.json"
THREE = "reference-visual-arft-3b-mat-search.json"


@pytest.fixture
def lb(tmp_path: Path) -> Path:
    """Two shipped reference entries and one literature entry."""
    sub = tmp_path / "lb" / "submissions"
    sub.mkdir(parents=True)
    for name in (SEVEN, THREE, "reported-sensenova-mars-direct-answer-GPT-4o-mat-search.json"):
        shutil.copyfile(SHIPPED / name, sub / name)
    return tmp_path / "lb"


def _board(lb: Path, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["leaderboard", "--leaderboard-dir", str(lb), *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _set(raw: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = raw
    for part in path:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

MALFORMED = [
    ("scores.all.f1", "0.64"),
    ("scores.all.em", 1.7),
    ("scores.simple.n", -3),
    ("scores.all.f1_ci", [0.9, 0.1]),
    ("n", "150"),
    ("kind", "bogus"),
    ("key", "../../escape"),
    ("official", "yes"),
    ("model", "visual-arft-3b"),
    ("task", _DELETE),
    ("judge", {"accuracy": 1.5, "n": 150, "model": "gpt-4o", "prompt": "matbench"}),
    ("judge", {"accuracy": 0.5, "n": 150, "model": "", "prompt": "matbench"}),
    ("cost", {"tokens": {"input": -100, "output": 5}}),
    ("surprise", 1),
]


@pytest.mark.parametrize(("field", "value"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_entry_is_refused_in_one_line_and_the_rest_builds(lb, capsys, field, value):
    bad = lb / "submissions" / THREE
    raw = json.loads(bad.read_text(encoding="utf-8"))
    _set(raw, field, value)
    bad.write_text(json.dumps(raw), encoding="utf-8")
    rc, out, err = _board(lb, capsys, "--format", "md")
    assert rc == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and f"field {field}" in lines[0], err
    assert "Visual-ARFT-7B" in out and "Visual-ARFT-3B" not in out  # the rest builds, the bad one is out
    rc, out, err = _board(lb, capsys, "--write")
    assert rc == 0 and "field" in err and "Visual-ARFT-7B" in (lb / "README.md").read_text()


def test_entry_that_is_not_json_or_not_an_object(lb, capsys):
    (lb / "submissions" / "broken.json").write_text("{not json", encoding="utf-8")
    (lb / "submissions" / "list.json").write_text("[1, 2]", encoding="utf-8")
    rc, out, err = _board(lb, capsys, "--format", "md")
    assert rc == 0 and len(err.strip().splitlines()) == 2
    assert (
        "broken.json: not valid JSON" in err and "list.json: a leaderboard entry must be a JSON object" in err
    )
    assert "Visual-ARFT-7B" in out and "Visual-ARFT-3B" in out


# --- cost: recomputed from recorded tokens with matbench's price table --------------------------------------
@pytest.fixture(scope="module")
def coding_data(fixtures_dir: Path, tmp_path_factory) -> Path:
    return make_coding_data(fixtures_dir, tmp_path_factory.mktemp("data") / "mat-coding")


def priced_run(fixtures_dir: Path, run: Path, data: Path) -> Path:
    """A finished MAT-Coding run of a model with a price in matbench's table (gpt-4o), with real trajectories."""
    make_coding_run(fixtures_dir, run, data, spec="gpt-4o", trajectories=True)

    def api_model(config: dict) -> None:
        config["model"]["model"] = "gpt-4o"
        config["fingerprint"] = config_fingerprint(config)

    edit_json(run / "config.json", api_model)
    return run


def expected_usd(n: int) -> float:
    """The coding trajectory's tokens (812+900+1500 in, 40+60+20 out per sample) at the table's gpt-4o price."""
    price = load_prices()["gpt-4o"]
    return n * price.cost({"input": 812 + 900 + 1500, "output": 40 + 60 + 20})


def test_cost_is_priced_by_matbench_not_by_the_submitter(fixtures_dir, coding_data, tmp_path, capsys):
    run = priced_run(fixtures_dir, tmp_path / "run", coding_data)

    def free(summary: dict) -> None:  # the run claims its own price: zero
        summary["run"]["cost"] = {
            "usd": 0.0,
            "per_sample_usd": 0.0,
            "status": "ok",
            "price": {
                "model": "gpt-4o",
                "input": 0.0,
                "cached_input": 0.0,
                "output": 0.0,
                "checked": "2026-12-01",
                "source": "me",
            },
        }

    edit_json(run / "summary.json", free)
    lb = tmp_path / "lb"
    assert main(["submit", str(run), "--leaderboard-dir", str(lb)]) == 0
    (path,) = (lb / "submissions").glob("run-*.json")

    def forged(entry: dict) -> None:  # and the entry file is edited to say it cost nothing
        entry["cost"].update(usd=0.0, per_sample_usd=0.0, price={"input": 0, "output": 0})

    edit_json(path, forged)
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json", "--leaderboard-dir", str(lb)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    cost = row["tasks"]["mat-coding"]["cost"]
    assert cost["usd"] == pytest.approx(expected_usd(200), abs=1e-6)
    assert cost["price"]["model"] == "gpt-4o" and cost["price"]["input"] > 0


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda r: r.update(tokens={"input": 10, "output": 1}), "but its turns add up to"),
        (lambda r: r["trajectory"][0]["tokens"].update(input=-812), "is not a count"),
        (lambda r: r.update(tokens={"input": -5, "output": 0}), "is not a count"),
    ],
    ids=["record-total-edited-down", "negative-turn", "negative-total"],
)
def test_token_counts_the_trajectories_contradict_are_refused(
    fixtures_dir, coding_data, tmp_path, capsys, edit, why
):
    run = priced_run(fixtures_dir, tmp_path / "run", coding_data)

    def once(rec: dict) -> dict:
        if rec["id"] == "12":
            edit(rec)
        return rec

    edit_records(run, once)
    capsys.readouterr()
    assert main(["submit", str(run), "--leaderboard-dir", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sample 12" in err and why in err
    assert not (tmp_path / "lb" / "submissions").exists()


# --- --write replaces only what matbench made ------------------------------------------------------------
@pytest.mark.parametrize("target", ["README.md", "index.html"])
def test_write_refuses_a_foreign_file_touching_nothing(lb, capsys, target):
    foreign = lb / target
    foreign.write_text("my own notes\n", encoding="utf-8")
    rc, out, err = _board(lb, capsys, "--write")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"refusing to write {foreign}" in err and "not made by" in err
    assert foreign.read_text(encoding="utf-8") == "my own notes\n"
    other = lb / ("index.html" if target == "README.md" else "README.md")
    assert not other.exists()  # nothing written, not even the other file


def test_write_refuses_symlinks_and_folders(lb, capsys, tmp_path):
    outside = tmp_path / "elsewhere.md"
    outside.write_text("keep\n", encoding="utf-8")
    (lb / "README.md").symlink_to(outside)
    rc, _, err = _board(lb, capsys, "--write")
    assert rc == 2 and "symbolic link" in err and outside.read_text() == "keep\n"
    (lb / "README.md").unlink()
    (lb / "index.html").mkdir()
    rc, _, err = _board(lb, capsys, "--write")
    assert rc == 2 and "not a regular file" in err and not (lb / "README.md").exists()


def test_write_replaces_its_own_files_and_says_row_or_rows(lb, capsys):
    (lb / "submissions" / SEVEN).unlink()
    rc, out, _ = _board(lb, capsys, "--write")
    assert rc == 0 and "(1 row)" in out
    assert made_by_matbench(lb / "README.md") and made_by_matbench(lb / "index.html")
    shutil.copyfile(SHIPPED / SEVEN, lb / "submissions" / SEVEN)
    rc, out, _ = _board(lb, capsys, "--write")  # its own files: replaced
    assert rc == 0 and "(2 rows)" in out and "Visual-ARFT-7B" in (lb / "README.md").read_text()


def test_screenshot_marker(lb, capsys, tmp_path):
    png = SHIPPED.parent / "screenshot.png"
    assert made_by_matbench(png)  # the shipped one carries the marker
    plain = tmp_path / "plain.png"
    data = png.read_bytes()
    plain.write_bytes(data.replace(b"matbench leaderboard --write", b"somebody else's tool!!!!!"))
    assert not made_by_matbench(plain)
    marked = tmp_path / "marked.png"
    marked.write_bytes(png_with_marker(plain.read_bytes()))
    assert made_by_matbench(marked)
    shutil.copyfile(plain, lb / "screenshot.png")
    rc, _, err = _board(lb, capsys, "--write", "--screenshot")  # refused before chromium is started
    assert rc == 2 and "screenshot.png" in err and not (lb / "README.md").exists()


# --- the terminal table --------------------------------------------------------------------------------
@pytest.mark.parametrize("ci", [False, True])
def test_terminal_table_fits_100_columns(capsys, monkeypatch, ci):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    capsys.readouterr()
    assert main(["leaderboard", *(["--ci"] if ci else [])]) == 0
    out = capsys.readouterr().out
    assert "MAT-Search — search: authors' web search (top 4)" in out and "| " not in out  # text, not md
    assert max(len(line) for line in out.splitlines()) <= 100
    assert ("[56.72,70.75]" in out) == ci  # 7B MAT-Search F1 interval
    assert "rows)" not in out and "(1 " not in out


def test_judge_column_shows_accuracy_n_interval_judge_and_prompt(lb, capsys):
    path = lb / "submissions" / SEVEN
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["judge"] = {
        "accuracy": 0.72,
        "n": 150,
        "ci95": [0.6467, 0.7867],
        "model": "qwen3-vl-32b",
        "prompt": "matbench",
    }
    path.write_text(json.dumps(raw), encoding="utf-8")
    rc, md, err = _board(lb, capsys, "--format", "md")
    assert rc == 0 and not err
    assert "72.00 (n=150, 95% CI 64.67–78.67; qwen3-vl-32b, matbench prompt)" in md
    rc, text, _ = _board(lb, capsys, "--format", "text", "--ci")
    assert "72.00 [64.67,78.67]" in text
    rc, page, _ = _board(lb, capsys, "--format", "html")
    assert 'data-v="0.72"' in page and "qwen3-vl-32b, matbench prompt" in page
    (entry,) = [e for e in load_entries(lb / "submissions") if e.key == raw["key"]]
    assert entry.judge["model"] == "qwen3-vl-32b"


def test_search_setting_labels_tell_settings_apart():
    from matbench.tools.search.base import setting_label

    default = {"backend": "serper", "endpoint": "https://google.serper.dev/search", "gl": None, "hl": None}
    labels = {
        setting_label(default),
        setting_label({**default, "gl": "de"}),
        setting_label({**default, "all_results": True}),
        setting_label({"backend": "local", "name": "c.jsonl", "passages": 991, "corpus_sha256": "a" * 64}),
        setting_label({"backend": "local", "name": "c.jsonl", "passages": 991, "corpus_sha256": "b" * 64}),
        setting_label({"backend": "retriever", "url": "http://127.0.0.1:8000"}),
        setting_label({"backend": "retriever", "url": "http://127.0.0.1:8001"}),
    }
    assert len(labels) == 7 and setting_label(default) == "serper"
