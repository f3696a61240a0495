"""`--shard I/N` and `matbench merge`: shards of one run merge into a run that score, submit and compare accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, request_text
from fixture_paths import FIXTURES

from matbench.cli import main
from matbench.errors import ConfigError
from matbench.records.run_dir import RunDir
from matbench.run.merge import merge_runs
from matbench.run.shards import parse_shard, shard_of


def test_shards_partition_ids_stably():
    ids = [str(i) for i in range(1, 2001)]
    parts = [[i for i in ids if shard_of(i, 4) == k] for k in range(4)]
    assert sorted(sum(parts, [])) == sorted(ids)
    assert all(400 < len(p) < 600 for p in parts)
    # adding samples never moves an existing one
    more = ids + [f"new-{i}" for i in range(500)]
    assert all(shard_of(i, 4) == k for k, p in enumerate(parts) for i in p)
    assert len([i for i in more if shard_of(i, 4) == 0]) > len(parts[0])
    assert str(parse_shard(" 3 / 4 ")) == "3/4" and parse_shard("0/1").holds("anything")
    for bad in ("4/4", "1", "-1/4", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def _policy(req):
    q = request_text(req)
    return "<answer> yes </answer>" if len(q) % 3 else "<answer> no </answer>"


def _eval(srv, tmp: Path, *extra: str) -> int:
    prices = tmp / "prices.yaml"  # a price for the fake model, so that cost is a number (matbench.models.cost)
    prices.write_text("models:\n  fake: {input: 1, cached_input: 0.5, output: 2, checked: '2026-12-03'}\n")
    return main(
        [
            "eval",
            "--no-progress",
            "--model",
            "openai:fake",
            "--base-url",
            srv.base_url,
            "--task",
            "bamboogle",
            "--data-dir",
            str(DATA),
            "--protocol",
            "direct",
            "--no-response-cache",
            "--cache-dir",
            str(tmp / "cache"),
            "--prices",
            str(prices),
            *extra,
        ]
    )


DATA = FIXTURES / "multihop"


@pytest.fixture(scope="module")
def shard_runs(tmp_path_factory, fixtures_dir):
    tmp = tmp_path_factory.mktemp("shards")
    with FakeOpenAIServer(_policy) as srv:
        for k in range(3):
            assert _eval(srv, tmp, "--shard", f"{k}/3", "--runs-root", str(tmp / "runs")) == 0
        # a rerun of a shard resumes its own directory, not another shard's
        assert _eval(srv, tmp, "--shard", "1/3", "--runs-root", str(tmp / "runs")) == 0
        assert _eval(srv, tmp, "--run-dir", str(tmp / "whole")) == 0
    runs = sorted((tmp / "runs").iterdir())
    assert [r.name.rsplit("_", 1)[1] for r in runs] == ["shard0of3", "shard1of3", "shard2of3"]
    return tmp, runs


def test_merge_equals_the_unsharded_run(shard_runs, capsys):
    tmp, runs = shard_runs
    sizes = [len(RunDir(r).read_records()) for r in runs]
    assert sum(sizes) == 125 and min(sizes) > 25
    out = tmp / "merged"
    assert main(["merge", *map(str, runs), "--out", str(out), "--data-dir", str(DATA)]) == 0
    assert "merged 3 shards, 125 samples" in capsys.readouterr().out
    merged, whole = RunDir(out), RunDir(tmp / "whole")
    assert [r["id"] for r in merged.iter_records()] == [r["id"] for r in whole.iter_records()]
    ms, ws = merged.read_summary(), whole.read_summary()
    for key in ("n", "missing", "f1", "em", "splits"):
        assert ms[key] == ws[key]
    assert ms["run"]["finished"] and ms["run"]["shards"] == 3 and ms["run"]["calls"] == 125
    assert ms["run"]["tokens"] == ws["run"]["tokens"]
    assert ms["run"]["cost"]["usd"] == pytest.approx(ws["run"]["cost"]["usd"]) and ws["run"]["cost"]["usd"] > 0
    cfg = merged.read_config()
    assert cfg["selection"]["shard"] is None and [m["shard"] for m in cfg["merged_from"]] == [
        "0/3",
        "1/3",
        "2/3",
    ]
    assert cfg["fingerprint"] == whole.read_config()["fingerprint"]
    # the merged run is an ordinary run: score, compare, submit
    assert main(["score", str(out), "--task", "bamboogle", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 125
    assert main(["compare", str(out), str(tmp / "whole"), "--json", "--resamples", "200"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    assert cmp["paired"] == 125 and cmp["overall"]["diff_f1"] == 0
    assert main(["view", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    lb = tmp / "lb"
    assert main(["submit", str(out), "--name", "merged", "--leaderboard-dir", str(lb)]) == 0
    assert "recorded" in capsys.readouterr().out
    # resuming the merged run, on another server, has nothing left to do
    with FakeOpenAIServer(_policy) as srv:
        assert _eval(srv, tmp, "--run-dir", str(out)) == 0
        assert srv.calls == 0


def test_merge_refuses_what_does_not_cover_the_task_once(shard_runs, tmp_path):
    tmp, runs = shard_runs
    with pytest.raises(ConfigError, match=r"missing shard\(s\) 2/3"):
        merge_runs(runs[:2], tmp_path / "a", data_dir=str(DATA))
    with pytest.raises(ConfigError, match="shard 1/3 given twice"):
        merge_runs([runs[0], runs[1], runs[1]], tmp_path / "b", data_dir=str(DATA))
    with pytest.raises(ConfigError, match="is not a shard"):
        merge_runs([tmp / "whole", *runs], tmp_path / "c", data_dir=str(DATA))
    # a shard that has not finished
    import shutil

    torn = tmp_path / "torn"
    shutil.copytree(runs[2], torn)
    lines = (torn / "predictions.jsonl").read_text().splitlines(keepends=True)
    (torn / "predictions.jsonl").write_text("".join(lines[:-2]))
    with pytest.raises(ConfigError, match=r"shard 2/3\) has not finished: 2 sample\(s\) missing"):
        merge_runs([runs[0], runs[1], torn], tmp_path / "d", data_dir=str(DATA))
    # a shard run with another configuration
    other = tmp_path / "other"
    shutil.copytree(runs[2], other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["scoring"], cfg["fingerprint"] = "squad", "0" * 16
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"different configurations \(changed: scoring\)"):
        merge_runs([runs[0], runs[1], other], tmp_path / "e", data_dir=str(DATA))
    with pytest.raises(ConfigError, match="not one matbench made"):
        merge_runs(runs, runs[0], data_dir=str(DATA))


def test_a_shard_directory_is_not_resumed_as_another_shard(shard_runs):
    tmp, runs = shard_runs
    with FakeOpenAIServer(_policy) as srv:
        with pytest.raises(ConfigError, match="holds shard 0/3, not 1/3"):
            from matbench.run.scheduler import EvalSettings, evaluate

            evaluate(
                EvalSettings(
                    model="openai:fake",
                    tasks=["bamboogle"],
                    data_dir=str(DATA),
                    protocol="direct",
                    base_url=srv.base_url,
                    run_dir=str(runs[0]),
                    shard="1/3",
                    response_cache=False,
                    cache_dir=str(tmp / "cache"),
                    progress=False,
                )
            )


def _image(run: Path, data: bytes, name_of: bytes | None = None) -> Path:
    """A file at the content-addressed place of ``name_of`` (default: of its own bytes)."""
    import hashlib

    digest = hashlib.sha256(data if name_of is None else name_of).hexdigest()
    path = run / "images" / digest[:2] / f"{digest}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_merge_checks_images_and_never_follows_links(shard_runs, tmp_path, capsys):
    """Shards from someone else: a forged image name, a linked image or record file is one line; the
    merged images are exactly the verified ones; a foreign --out is left alone, an earlier merge replaced."""
    import shutil

    _, runs = shard_runs
    copies = [tmp_path / f"s{k}" for k in range(3)]
    for src, dst in zip(runs, copies, strict=True):
        shutil.copytree(src, dst)
    good = _image(copies[0], b"real image bytes")
    shared = _image(copies[1], b"in two shards")
    _image(copies[2], b"in two shards")
    args = [*map(str, copies), "--data-dir", str(DATA)]

    forged = _image(copies[2], b"something else", name_of=b"real image bytes 2")
    assert main(["merge", *args, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert forged.name in err and "not the one its name says" in err and "\n" not in err
    assert not (tmp_path / "m").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".m")]
    forged.unlink()

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"host file")
    linked = _image(copies[2], b"host file")
    linked.unlink()
    linked.symlink_to(secret)
    assert main(["merge", *args, "--out", str(tmp_path / "m")]) == 2
    assert "symbolic link" in capsys.readouterr().err
    linked.unlink()

    preds = copies[1] / "predictions.jsonl"
    moved = tmp_path / "preds-elsewhere.jsonl"
    preds.rename(moved)
    preds.symlink_to(moved)
    assert main(["merge", *args, "--out", str(tmp_path / "m")]) == 2
    assert "predictions.jsonl: is a symbolic link" in capsys.readouterr().err
    preds.unlink()
    moved.rename(preds)

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main(["merge", *args, "--out", str(foreign)]) == 2
    assert "not one matbench made" in capsys.readouterr().err and [p.name for p in foreign.iterdir()] == ["keep.txt"]

    out = tmp_path / "m"
    assert main(["merge", *args, "--out", str(out)]) == 0
    names = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(c).as_posix() for c, p in ((copies[0], good), (copies[1], shared)))
    assert (out / good.relative_to(copies[0])).read_bytes() == b"real image bytes"
    assert main(["merge", *args, "--out", str(out)]) == 0  # its own earlier merge: replaced
