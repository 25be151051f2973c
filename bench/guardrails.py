"""Benchmark and accuracy report for the guardrails engine (`aigis.guardrails`).

Run: `uv run python bench/guardrails.py` (a few seconds). Prints:

1. throughput (MB/s of prompt text) of the full default pipeline and of each guardrail alone;
2. per-prompt latency (p50/p99 µs) on ~2 KB chat-like prompts, requests and responses;
3. prompt-injection accuracy on the shared development set (`../shared/data/prompts-dev.jsonl`,
   read in place, skipped when absent): recall, false-positive rate, precision, confusion matrix,
   per source, and on two held-out splits (by source, and by a hash of the text);
4. false positives on unseen benign text: 2 KB chunks of the documentation of the installed
   Python packages (real prose, code and licences).

Numbers are for reading, not asserting; tests never depend on them.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from aigis.api.aiworkload import Guardrails
from aigis.guardrails import GuardrailPipeline
from aigis.guardrails.injection import default_detector

REPO = Path(__file__).resolve().parents[1]
DEV_SET = REPO.parent / "shared" / "data" / "prompts-dev.jsonl"
THRESHOLD = Guardrails().prompt_injection.threshold

_OPENERS = [
    "Hi, could you help me with something?",
    "Please summarise the following customer conversation for the support team.",
    "I need a short reply to this email, friendly but firm.",
    "Can you review this paragraph for grammar and tone?",
    "Explain the difference between these two pricing plans to a new customer.",
]
_BODY = [
    "our",
    "quarterly",
    "report",
    "shows",
    "revenue",
    "growth",
    "in",
    "the",
    "northern",
    "region",
    "while",
    "churn",
    "rose",
    "slightly",
    "among",
    "small",
    "business",
    "customers",
    "the",
    "onboarding",
    "team",
    "suggested",
    "a",
    "new",
    "welcome",
    "sequence",
    "with",
    "three",
    "emails",
    "and",
    "a",
    "follow",
    "up",
    "call",
    "after",
    "fourteen",
    "days",
    "we",
    "also",
    "discussed",
    "the",
    "warehouse",
    "move",
    "which",
    "is",
    "planned",
    "for",
    "the",
    "second",
    "half",
    "of",
    "the",
    "year",
    "and",
    "may",
    "delay",
    "some",
    "deliveries",
    "please",
    "keep",
    "the",
    "tone",
    "positive",
    "and",
    "mention",
    "that",
    "the",
    "discount",
    "code",
    "stays",
    "valid",
    "until",
    "the",
    "end",
    "of",
    "the",
    "month",
    "the",
    "customer",
    "asked",
    "whether",
    "invoices",
    "can",
    "be",
    "sent",
    "as",
    "pdf",
    "and",
    "whether",
    "the",
    "contract",
    "can",
    "be",
    "cancelled",
    "monthly",
    "they",
    "also",
    "wanted",
    "to",
    "know",
    "how",
    "data",
    "is",
    "stored",
    "and",
    "who",
    "can",
    "access",
    "it",
]
_DETAILS = [
    "Contact: maria.keller@example.com",
    "Phone +44 20 7946 0958",
    "Order 48213 shipped on 2024-05-02",
    "Ticket #5512",
    "Reference IBAN DE89 3704 0044 0532 0130 00",
]


def chat_prompts(count: int, size: int, seed: int = 11) -> list[str]:
    """Deterministic chat-like prompts of about `size` characters, some with personal data."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        parts = [rng.choice(_OPENERS)]
        while sum(len(p) + 1 for p in parts) < size:
            sentence = " ".join(rng.choice(_BODY) for _ in range(rng.randint(8, 20)))
            parts.append(sentence.capitalize() + ".")
            if rng.random() < 0.08:
                parts.append(rng.choice(_DETAILS) + ".")
        prompts.append(" ".join(parts)[:size])
    return prompts


def pipeline(**guardrails: object) -> GuardrailPipeline:
    return GuardrailPipeline.from_spec(Guardrails.model_validate(guardrails))


OFF = {"enabled": False}
CONFIGURATIONS: dict[str, GuardrailPipeline] = {
    "full default pipeline": pipeline(),
    "prompt injection only": pipeline(pii=OFF, secrets=OFF),
    "PII only": pipeline(promptInjection=OFF, secrets=OFF),
    "secrets only": pipeline(promptInjection=OFF, pii=OFF),
    "deny patterns only (8)": pipeline(
        promptInjection=OFF,
        pii=OFF,
        secrets=OFF,
        denyPatterns=[
            {"name": f"rule-{i}", "pattern": rf"(?i)\bproject[- ]codename[- ]{i}\b"}
            for i in range(8)
        ],
    ),
}


def timed(scan: Callable[[str], object], texts: list[str], rounds: int) -> list[float]:
    """Seconds per call, after one warm-up pass (RE2 builds its DFA lazily)."""
    for text in texts:
        scan(text)
    samples = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            scan(text)
            samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report_speed() -> None:
    prompts = chat_prompts(300, 2048)
    megabytes = sum(len(p.encode()) for p in prompts) / 1e6
    print("== Throughput (300 chat-like prompts of ~2 KB, direction=request) ==")
    for name, guarded in CONFIGURATIONS.items():
        samples = timed(lambda t, g=guarded: g.scan(t, direction="request"), prompts, rounds=3)
        total = sum(samples) / 3
        print(f"  {name:<26} {megabytes / total:8.1f} MB/s")
    large = " ".join(prompts)[: 1 << 20]
    full = CONFIGURATIONS["full default pipeline"]
    samples = timed(lambda t: full.scan(t, direction="request"), [large], rounds=3)
    rate = len(large.encode()) / 1e6 / statistics.median(samples)
    print(f"  {'full, one 1 MiB text':<26} {rate:8.1f} MB/s")
    print()
    print("== Per-prompt latency, full default pipeline, ~2 KB prompts ==")
    for direction in ("request", "response"):
        samples = timed(lambda t, d=direction: full.scan(t, direction=d), prompts, rounds=5)
        print(
            f"  {direction:<9} p50 {percentile(samples, 0.5) * 1e6:7.1f} µs   "
            f"p99 {percentile(samples, 0.99) * 1e6:7.1f} µs   "
            f"max {max(samples) * 1e6:7.1f} µs"
        )
    stream_text = " ".join(prompts[:20])

    def stream_all(text: str) -> None:
        scanner = full.stream()
        for i in range(0, len(text), 24):
            scanner.feed(text[i : i + 24])
        scanner.finish()

    samples = timed(stream_all, [stream_text], rounds=5)
    chunks = len(stream_text) // 24 + 1
    print(
        f"  stream    {statistics.median(samples) / chunks * 1e6:7.1f} µs per 24-character chunk "
        f"({len(stream_text) / 1e3:.0f} KB answer)"
    )
    print()


class Confusion:
    """Counts of a binary verdict against labels."""

    def __init__(self) -> None:
        self.tp = self.fn = self.fp = self.tn = 0

    def add(self, flagged: bool, attack: bool) -> None:
        if attack:
            self.tp += flagged
            self.fn += not flagged
        else:
            self.fp += flagged
            self.tn += not flagged

    def line(self) -> str:
        attacks, benign = self.tp + self.fn, self.fp + self.tn
        recall = self.tp / attacks if attacks else float("nan")
        fpr = self.fp / benign if benign else float("nan")
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")
        return (
            f"recall {recall:6.1%}  FPR {fpr:6.1%}  precision {precision:6.1%}   "
            f"TP {self.tp:3d} FN {self.fn:3d} FP {self.fp:3d} TN {self.tn:3d}"
        )


def report_accuracy() -> None:
    print(
        "== Prompt-injection accuracy on the development set (IN-SAMPLE: training data of the "
        "shipped model, and the signals were written reading it; held-out figures: "
        "bench/guardrails_loso.py) =="
    )
    if not DEV_SET.exists():
        print(f"  skipped: {DEV_SET} not found")
        print()
        return
    detector = default_detector()
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines()]
    verdicts = [
        (detector.assess(r["text"]).score >= THRESHOLD, r["label"] == "injection", r) for r in rows
    ]
    overall = Confusion()
    by_source: dict[str, Confusion] = defaultdict(Confusion)
    by_half: dict[str, Confusion] = defaultdict(Confusion)
    for flagged, attack, row in verdicts:
        overall.add(flagged, attack)
        by_source[row["source"]].add(flagged, attack)
        digest = hashlib.sha256(row["text"].encode()).digest()[0]
        by_half["hash half A" if digest % 2 == 0 else "hash half B"].add(flagged, attack)
    print(f"  threshold {THRESHOLD}, {len(rows)} rows")
    print(f"  {'all rows':<34} {overall.line()}")
    print("  confusion matrix (rows: truth, columns: verdict)")
    print(f"  {'':<20}{'flagged':>10}{'passed':>10}")
    print(f"  {'injection':<20}{overall.tp:>10}{overall.fn:>10}")
    print(f"  {'benign':<20}{overall.fp:>10}{overall.tn:>10}")
    print("  per source")
    for source, confusion in sorted(by_source.items()):
        print(f"    {source:<32} {confusion.line()}")
    print("  held-out splits")
    deepset = Confusion()
    others = Confusion()
    for flagged, attack, row in verdicts:
        (deepset if row["source"].startswith("deepset") else others).add(flagged, attack)
    print(f"    {'deepset rows':<32} {deepset.line()}")
    print(f"    {'Giskard + llm-guard rows':<32} {others.line()}")
    for half, confusion in sorted(by_half.items()):
        print(f"    {half:<32} {confusion.line()}")
    print()


def documentation_chunks(limit: int = 3000) -> Iterable[str]:
    """2 KB chunks of installed packages' long descriptions: unseen, benign, varied text."""
    site = Path(sys.prefix) / "lib"
    files = sorted(site.glob("python3*/site-packages/*.dist-info/METADATA"))
    count = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for start in range(0, min(len(text), 60_000), 2000):
            yield text[start : start + 2000]
            count += 1
            if count >= limit:
                return


def report_unseen_benign() -> None:
    print("== False positives on unseen benign text (package documentation, 2 KB chunks) ==")
    detector = default_detector()
    chunks = list(documentation_chunks())
    flagged = [c for c in chunks if detector.assess(c).score >= THRESHOLD]
    rate = len(flagged) / len(chunks) if chunks else float("nan")
    print(f"  {len(flagged)} of {len(chunks)} chunks flagged ({rate:.2%})")
    print()


if __name__ == "__main__":
    report_speed()
    report_accuracy()
    report_unseen_benign()
