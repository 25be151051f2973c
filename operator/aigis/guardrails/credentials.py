"""Recognisers for credentials: cloud and SaaS API keys, tokens, private keys, and secrets
assigned in config or code (`password=...`, `api_key: ...`).

Well-known formats are recognised by their fixed prefixes (`AKIA`, `ghp_`, `sk-ant-`, `xoxb-`,
...), which makes them precise. Everything else needs context: an AWS secret key is only 40
base64 characters, so it is recognised after an `aws_secret_access_key`-like name; a generic
assignment is reported only when the value looks random (entropy, mixed characters) and is not
a placeholder such as `<your-key>` or `${TOKEN}`. The module is named for what it finds so it
does not shadow the standard library's `secrets`.
"""

from __future__ import annotations

import math
from collections import Counter

from aigis.guardrails.patterns import Recognizer, whole

_END = r"(?:[^A-Za-z0-9_\-]|$)"
"""Where a token ends: token alphabets include `-` and `_`, which RE2's `\\b` treats unevenly."""

_PLACEHOLDER_HINTS = (
    "example", "your", "xxxx", "****", "<", ">", "${", "{{", "%s", "changeme", "placeholder",
    "redacted", "dummy", "sample", "replace", "insert", "todo", "secret_here", "...",
)  # fmt: skip


def shannon_entropy(value: str) -> float:
    """Bits of entropy per character of `value`, from its character frequencies."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def is_placeholder(value: str) -> bool:
    """Whether `value` is a stand-in for a secret rather than one (docs, templates, redactions)."""
    lowered = value.lower()
    if len(set(lowered)) <= 2:
        return True
    return any(hint in lowered for hint in _PLACEHOLDER_HINTS)


def _character_classes(value: str) -> int:
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )


def random_token(value: str) -> bool:
    """A value that looks machine-generated: long enough, mixed characters, high entropy."""
    return (
        len(value) >= 16
        and _character_classes(value) >= 2
        and any(c.isdigit() for c in value)
        and shannon_entropy(value) >= 3.3
        and not is_placeholder(value)
    )


def password_like(value: str) -> bool:
    """A value a person might choose as a password: not a plain word such as `required`.

    People pick low-entropy passwords (`hunter2`), so entropy alone would miss them; two kinds
    of characters, or a long value, is what separates a password from prose after `password:`.
    """
    value = value.rstrip(".")
    if len(value) < 6 or is_placeholder(value):
        return False
    return _character_classes(value) >= 2 or (len(value) >= 12 and shannon_entropy(value) >= 3.0)


def uri_password(value: str) -> bool:
    """The password part of `scheme://user:password@host`, unless it is a placeholder."""
    return not is_placeholder(value) and value.lower() not in ("password", "pass", "pwd", "secret")


_NAME_PREFIX = r"(?:[A-Za-z0-9]+[_\-.])*"
_ASSIGN = r"""["']?\s*(?::=|=>|[:=])\s*["'`]?"""

RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer(
        "PRIVATE_KEY",
        r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
        priority=90,
    ),
    Recognizer(
        "AWS_ACCESS_KEY",
        r"\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16})" + _END,
        group=1,
        priority=60,
    ),
    Recognizer(
        "AWS_SECRET_KEY",
        r"(?i)aws[_\-. ]?(?:secret[_\-. ]?(?:access[_\-. ]?)?key|secret)"
        + _ASSIGN
        + r"([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)",
        group=1,
        priority=60,
    ),
    Recognizer(
        "GITHUB_TOKEN",
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})" + _END,
        group=1,
        priority=60,
    ),
    Recognizer("GITLAB_TOKEN", r"\b(glpat-[A-Za-z0-9_\-]{20,})" + _END, group=1, priority=60),
    Recognizer(
        "ANTHROPIC_API_KEY",
        r"\b(sk-ant-[a-z]+[0-9]*-[A-Za-z0-9_\-]{32,})" + _END,
        group=1,
        priority=70,
    ),
    Recognizer(
        "OPENAI_API_KEY",
        r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"
        r"|sk-[A-Za-z0-9]{32,})" + _END,
        group=1,
        priority=60,
    ),
    Recognizer(
        "SLACK_TOKEN",
        r"\b(xox[abposr]-[0-9A-Za-z]+(?:-[0-9A-Za-z]+)+)" + _END,
        group=1,
        priority=60,
    ),
    Recognizer(
        "SLACK_WEBHOOK",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,}",
        priority=60,
    ),
    Recognizer("GOOGLE_API_KEY", r"\b(AIza[0-9A-Za-z_\-]{35})" + _END, group=1, priority=60),
    Recognizer(
        "STRIPE_KEY", r"\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,})" + _END, group=1, priority=60
    ),
    Recognizer("HUGGINGFACE_TOKEN", r"\b(hf_[A-Za-z0-9]{30,})" + _END, group=1, priority=60),
    Recognizer("NPM_TOKEN", r"\b(npm_[A-Za-z0-9]{36})" + _END, group=1, priority=60),
    Recognizer(
        "SENDGRID_KEY",
        r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})" + _END,
        group=1,
        priority=60,
    ),
    Recognizer(
        "JWT",
        r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})" + _END,
        group=1,
        priority=50,
    ),
    Recognizer(
        "BEARER_TOKEN",
        r"(?i)\bauthorization\s*[:=]\s*[\"']?(?:bearer|token|basic)\s+([A-Za-z0-9_\-+/=.~]{16,})",
        group=1,
        check=whole(lambda v: not is_placeholder(v)),
        priority=30,
    ),
    Recognizer(
        "PASSWORD",
        r"(?i)[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,64}:([^\s@/]{3,128})@[A-Za-z0-9]",
        group=1,
        check=whole(uri_password),
        priority=20,
    ),
    Recognizer(
        "PASSWORD",
        r"(?i)\b"
        + _NAME_PREFIX
        + r"(?:password|passwd|passphrase|pwd|kennwort|passwort|mot de passe|contrase[ñn]a)"
        r"(?:[_\-.][a-z0-9]+)?(?:"
        + _ASSIGN
        + r"|\s+(?:is|ist|est|es)\s+[\"'`]?)([^\s\"'`,;]{6,128})",
        group=1,
        check=whole(password_like),
        priority=10,
    ),
    Recognizer(
        "API_KEY",
        r"(?i)\b"
        + _NAME_PREFIX
        + r"(?:api[_\-]?key|apikey|api[_\-]?secret|secret[_\-]?key|client[_\-]?secret"
        r"|access[_\-]?key|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|token"
        r"|secret|private[_\-]?key|account[_\-]?key|signing[_\-]?key|credentials?)"
        r"(?:[_\-.][a-z0-9]+)?" + _ASSIGN + r"([A-Za-z0-9_\-+/=.~]{16,256})",
        group=1,
        check=whole(random_token),
        priority=10,
    ),
)
"""Every credential recogniser; the secrets guardrail has no per-type switch."""
