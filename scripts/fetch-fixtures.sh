#!/usr/bin/env bash
# Assemble the test fixtures in DIR from their public sources (pinned commits on GitHub, the hub), each file
# checked by sha256: scripts/fetch-fixtures.sh ../shared/fixtures [--from EXISTING_SET] [--only SUBPATH]
# Hosts: MATBENCH_GITHUB_RAW_URL (default https://raw.githubusercontent.com), MATBENCH_HUB_URL (default
# $HF_ENDPOINT or https://huggingface.co). Details: scripts/fetch_fixtures.py.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [--from EXISTING_SET] [--only SUBPATH]" >&2
  exit 2
fi
exec "${PYTHON:-python3}" "$(dirname "$0")/fetch_fixtures.py" "$@"
