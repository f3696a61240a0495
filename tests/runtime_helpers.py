"""Helpers for the agent-runtime tests: run `matbench eval` against local servers (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def eval_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "matbench.cli", "eval", "--no-progress", *args]


def run_eval(args: list[str], env_extra: dict | None = None, cache_dir: Path | None = None, **kw):
    env = dict(os.environ)
    env.setdefault("OPENAI_API_KEY", "sk-test-secret-never-logged")
    if cache_dir is not None:
        env["MATBENCH_CACHE_DIR"] = str(cache_dir)
    env.update(env_extra or {})
    return subprocess.run(eval_cmd(*args), env=env, capture_output=True, text=True, cwd=ROOT, **kw)


def fake_args(srv, task: str, data_dir) -> list[str]:
    """The `matbench eval` arguments for ``task`` on local data against a scripted OpenAI-compatible server."""
    return ["--model", "openai:fake", "--base-url", srv.base_url, "--task", task, "--data-dir", str(data_dir)]


def fake_eval(srv, tmp_path: Path, task: str, data_dir, *extra: str, **kw):
    """`matbench eval` of ``task`` against a scripted OpenAI-compatible server, runs and cache under tmp_path."""
    args = [*fake_args(srv, task, data_dir), *extra, "--runs-root", str(tmp_path / "runs")]
    return run_eval(args, cache_dir=tmp_path / "cache", **kw)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_dir_of(stdout: str) -> Path:
    for line in stdout.splitlines():
        if line.startswith("run directory: "):
            return Path(line.split(": ", 1)[1].strip())
    raise AssertionError(f"no run directory in output:\n{stdout}")


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) for the given handler; a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RetrievalServer(LoopbackServer):
    """A Search-R1/FlashRAG retrieval server on 127.0.0.1 answering every query with fixed passages."""

    def __init__(self, passages: list[tuple[str, str]]):
        self.passages = passages
        self.queries: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.queries.extend(body["queries"])
                docs = [
                    {"document": {"id": str(i), "contents": f'"{title}"\n{text}'}, "score": 1.0 - i / 10}
                    for i, (title, text) in enumerate(outer.passages[: body["topk"]])
                ]
                data = json.dumps({"result": [docs for _ in body["queries"]]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def main_eval(args: list[str], capsys) -> tuple[int, str, str]:
    """`matbench eval ARGS` in this process (``matbench.cli.main``): exit status, stdout, stderr."""
    from matbench.cli import main

    capsys.readouterr()  # drop what came before
    rc = main(["eval", "--no-progress", *args])
    out, err = capsys.readouterr()
    return rc, out, err
