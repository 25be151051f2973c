"""Leave-one-source-out evaluation of the learned prompt-injection model (`make bench`).

For each source repository of the labelled data, a model is trained on every other source and
scores the rows of the one left out: no row is ever scored by a model that saw its source. The
thresholds "at 1 % / 5 % FPR" are taken from these held-out scores of all benign rows pooled
(one threshold for all sources, as a deployment has one), and each held-out source is then read
at those thresholds and at the operating point the shipped model uses. Role-play rows are the
benign rows matching `aigis.guardrails.training.ROLE_PLAY` (act as, you are now, pretend, ...).

Run: `uv run --frozen --group train python bench/guardrails_loso.py` (about six minutes on one
core; `--skip-ngrams` leaves out the slow n-gram model and takes under a minute).
Reads ../shared/data/ in place and skips cleanly when it is absent. Numbers are for reading.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from aigis.guardrails import training  # noqa: E402
from aigis.guardrails.injection import InjectionDetector  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = [DATA / "prompts-train.jsonl", DATA / "prompts-dev.jsonl"]


def rate(flags: np.ndarray) -> str:
    return f"{flags.mean():6.1%}" if flags.size else "     -"


def report(title: str, rows: list[training.Row], logits: np.ndarray) -> None:
    print(f"== Prompt injection, leave one source out: {title} ==")
    attack = np.array([r.attack for r in rows])
    role_play = np.array([training.is_role_play(r) for r in rows])
    sources = np.array([r.source for r in rows])
    at1 = training.threshold_at(logits[~attack], 0.01)
    at5 = training.threshold_at(logits[~attack], 0.05)
    shipped = training.operating_point(logits, rows)
    print(
        f"  {len(rows)} rows, {len(set(sources))} sources, {int(role_play.sum())} benign "
        f"role-play rows; thresholds at pooled held-out FPR 1% / 5% and the operating point "
        f"(2% FPR, <= 5% role-play FPR): logit {at1:.3f} / {at5:.3f} / {shipped:.3f}"
    )
    print(
        f"  {'held-out source':<42}{'inj':>5}{'ben':>6}{'rp':>5}"
        f"{'R@1%':>8}{'R@5%':>8}{'R@op':>8}{'FPR@5%':>8}{'FPR@op':>8}{'RP@5%':>8}{'RP@op':>8}"
    )
    groups = [(s, sources == s) for s in sorted(set(sources))]
    groups.append(("ALL (pooled held-out scores)", np.ones(len(rows), dtype=bool)))
    for name, mask in groups:
        a, b, r = mask & attack, mask & ~attack, mask & role_play
        print(
            f"  {name[:41]:<42}{int(a.sum()):>5}{int(b.sum()):>6}{int(r.sum()):>5}"
            f"  {rate(logits[a] >= at1)}  {rate(logits[a] >= at5)}  {rate(logits[a] >= shipped)}"
            f"  {rate(logits[b] >= at5)}  {rate(logits[b] >= shipped)}"
            f"  {rate(logits[r] >= at5)}  {rate(logits[r] >= shipped)}"
        )
    recalls = [
        float((logits[(sources == s) & attack] >= at5).mean())
        for s, _ in groups[:-1]
        if ((sources == s) & attack).sum() >= 20
    ]
    print(f"  macro recall at 5% FPR, sources with >= 20 injections: {np.mean(recalls):.1%}")
    print()


def hand_weighted_logits(rows: list[training.Row]) -> np.ndarray:
    """The signals' hand-set noisy-or score as a logit: no training, so nothing is in-sample
    except that the signals were written while reading the dev set."""
    detector = InjectionDetector()
    scores = np.array([detector.assess(r.text).score for r in rows])
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def main() -> None:
    parser = argparse.ArgumentParser(description="leave-one-source-out evaluation")
    parser.add_argument("--skip-ngrams", action="store_true", help="skip the slow n-gram model")
    args = parser.parse_args()
    if not all(f.exists() for f in FILES):
        print(f"== Prompt injection, leave one source out: skipped, no data in {DATA} ==")
        return
    rows = training.load_rows(FILES)
    signals = training.featurize(rows, bits=0)
    report(
        "signals with learned weights (shipped, opt-in)",
        rows,
        training.out_of_source_logits(signals, rows),
    )
    report("signals with hand-set weights (the default)", rows, hand_weighted_logits(rows))
    if not args.skip_ngrams:
        bits = training.NGRAM_BENCH_BITS
        matrix = training.featurize(rows, bits=bits)
        report(
            f"signals + hashed n-grams (2**{bits} buckets; not shipped)",
            rows,
            training.out_of_source_logits(matrix, rows),
        )


if __name__ == "__main__":
    main()
