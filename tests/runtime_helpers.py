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


def run_eval(
    args: list[str],
    env_extra: dict | None = None,
    cache_dir: Path | None = None,
    *,
    in_process: bool = True,
    **kw,
) -> subprocess.CompletedProcess:
    """`matbench eval --no-progress ARGS` in this process (``in_process``, the fast default: no interpreter
    start-up and imports per call) or as a real subprocess (the end-to-end tests that keep the process
    boundary: the console script, exit codes, signals). Either way the environment, cwd and result match."""
    env = dict(os.environ)
    env.setdefault("OPENAI_API_KEY", "sk-test-secret-never-logged")
    if cache_dir is not None:
        env["MATBENCH_CACHE_DIR"] = str(cache_dir)
    env.update(env_extra or {})
    if in_process:
        return run_cli(["eval", "--no-progress", *args], env=env, **kw)
    return subprocess.run(eval_cmd(*args), env=env, capture_output=True, text=True, cwd=ROOT, **kw)


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # what matbench.cli.main configures


def run_cli(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
    cwd: Path | str = ROOT,
    input: str | None = None,  # noqa: A002 - the name subprocess.run uses
    timeout: float | None = None,  # accepted for subprocess.run compatibility; an in-process call has none
) -> subprocess.CompletedProcess:
    """``matbench ARGV`` through ``matbench.cli.main`` in this process, as ``subprocess.run`` would report it.

    The environment is replaced for the call (``env``, plus ``env_extra``), cwd is ``cwd``, stdin is ``input``;
    stdout, stderr and the warnings matbench logs are captured; an uncaught exception is exit status 1 with
    its traceback on stderr, as the interpreter would print it. Everything is restored afterwards.
    """
    import contextlib
    import io
    import logging
    import signal
    import traceback

    from matbench.cli import main

    del timeout
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_level = root.level
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    verbose = any(a in ("-v", "--verbose") for a in argv)
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    saved_stdin = sys.stdin
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.environ.update(env_extra or {})
        os.chdir(cwd)
        sys.stdin = io.StringIO(input or "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse errors and --help
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if exc.code is not None and not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
            except Exception:  # noqa: BLE001 - what the interpreter does with an uncaught exception
                traceback.print_exc()
                rc = 1
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, old in saved_handlers.items():
            signal.signal(sig, old)
        root.removeHandler(handler)
        root.setLevel(saved_level)
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


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


def error_lines(stderr: str) -> list[str]:
    """stderr less its informational lines (the run directory chosen, a resume, a once-per-run warning such
    as a model the model table does not know): what is left must be the one line an error promises."""
    info = ("new run: ", "resuming: ", "WARNING ")
    return [line for line in stderr.strip().splitlines() if not line.startswith(info)]
