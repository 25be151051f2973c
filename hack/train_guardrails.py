"""Train the learned prompt-injection model and write it into the package (`make train-guardrails`).

    uv run --frozen --group train python hack/train_guardrails.py            # write the file
    uv run --frozen --group train python hack/train_guardrails.py --check    # verify it

Reads the labelled prompts from ../shared/data/ (prompts-train.jsonl and prompts-dev.jsonl; see
docs/guardrails.md for their sources and licences; they are not part of this repository) and
writes operator/aigis/guardrails/injection_model.bin. The run is deterministic (sorted rows,
fixed seed, single-threaded solver and BLAS, float16 weights, rounded header floats), so the
same data and the versions pinned in uv.lock rebuild the file byte for byte; `--check` trains
afresh and fails when the shipped file differs.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy loads: one thread, one summation order

import argparse  # noqa: E402
import hashlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from aigis.guardrails import training  # noqa: E402
from aigis.guardrails.learned import MODEL_FILE, serialize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUTPUT = REPO / "operator" / "aigis" / "guardrails" / MODEL_FILE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the JSONL files")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    args = parser.parse_args()
    files = [args.data / "prompts-train.jsonl", args.data / "prompts-dev.jsonl"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"training data not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    facts = {
        "data_sha256": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files},
        "C": training.C,
        "seed": training.SEED,
        "target_fpr": training.TARGET_FPR,
        "target_role_play_fpr": training.TARGET_ROLE_PLAY_FPR,
    }
    model = training.train(training.load_rows(files), facts)
    data = serialize(model)
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        shipped = args.output.read_bytes() if args.output.exists() else b""
        shipped_digest = hashlib.sha256(shipped).hexdigest()
        if shipped != data:
            print(f"MISMATCH: shipped {shipped_digest}, fresh run {digest}", file=sys.stderr)
            return 1
        print(f"ok: {args.output.name} matches a fresh run (sha256 {digest})")
        return 0
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
