#!/usr/bin/env bash
# Runs pytest and treats "no tests collected" (exit 5) as the failure it is: a test command that
# ran nothing must never look green.
set -uo pipefail
cd "$(dirname "$0")/.."
uv run --frozen pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
