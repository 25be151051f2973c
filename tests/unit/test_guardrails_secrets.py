"""Credential recognisers: well-known token formats by prefix, context-bound keys, and
generic assignments only when the value looks random. All values below are made up."""

from __future__ import annotations

import pytest

from aigis.api.aiworkload import Guardrails
from aigis.guardrails import GuardrailPipeline
from aigis.guardrails.credentials import is_placeholder, password_like, random_token

SECRETS_ONLY = GuardrailPipeline.from_spec(
    Guardrails.model_validate({"promptInjection": {"enabled": False}, "pii": {"enabled": False}})
)

GITHUB = "ghp_" + "x7Kq2" * 7 + "a"
OPENAI = "sk-proj-" + "Zt4_w9Lm" * 6
ANTHROPIC = "sk-ant-api03-" + "Q8r-Tz3v" * 12
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    "-----END RSA PRIVATE KEY-----"
)


def found(text: str) -> list[tuple[str, str]]:
    findings = SECRETS_ONLY.scan(text, direction="request").findings
    return [(f.type, text[f.start : f.end]) for f in findings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "id AKIAIOSFODNN7EXAMPLE.",
            [("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")],
            id="aws-access-key-id",
        ),
        pytest.param(
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            [("AWS_SECRET_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")],
            id="aws-secret-key-in-context-value-only",
        ),
        pytest.param(
            f"token {GITHUB} leaked", [("GITHUB_TOKEN", GITHUB)], id="github-classic-token"
        ),
        pytest.param(
            f"OPENAI_API_KEY={OPENAI}",
            [("OPENAI_API_KEY", OPENAI)],
            id="openai-project-key-beats-generic-assignment",
        ),
        pytest.param(
            f"key: {ANTHROPIC}",
            [("ANTHROPIC_API_KEY", ANTHROPIC)],
            id="anthropic-key-not-reported-as-openai",
        ),
        pytest.param(
            "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
            [("SLACK_TOKEN", "xoxb-1234567890-0987654321-AbCdEfGhIjKl")],
            id="slack-bot-token",
        ),
        pytest.param(
            "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
            [("GOOGLE_API_KEY", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")],
            id="google-api-key",
        ),
        pytest.param(
            "sk_live_51Hx9q2eZvKYlo2C8aB3dE4f",
            [("STRIPE_KEY", "sk_live_51Hx9q2eZvKYlo2C8aB3dE4f")],
            id="stripe-secret-key",
        ),
        pytest.param(
            f"Authorization: Bearer {JWT}", [("JWT", JWT)], id="jwt-named-as-jwt-not-bearer"
        ),
        pytest.param(f"key:\n{PEM}\nthanks", [("PRIVATE_KEY", PEM)], id="pem-private-key-block"),
        pytest.param(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA",
            [("PRIVATE_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA")],
            id="unterminated-pem-runs-to-the-end",
        ),
        pytest.param("password=hunter2", [("PASSWORD", "hunter2")], id="password-assignment"),
        pytest.param(
            'DB_PASSWORD: "Tr0ub4dor&3"', [("PASSWORD", "Tr0ub4dor&3")], id="prefixed-password-name"
        ),
        pytest.param(
            "postgres://app:S3cr3t!pw@db.internal:5432/app",
            [("PASSWORD", "S3cr3t!pw")],
            id="password-in-connection-uri",
        ),
        pytest.param(
            "api_key = 'a8f5f167f44f4964e6c998dee827110c'",
            [("API_KEY", "a8f5f167f44f4964e6c998dee827110c")],
            id="generic-api-key-high-entropy",
        ),
    ],
)
def test_credentials_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("the password: required field is missing", id="password-followed-by-a-word"),
        pytest.param("api_key=YOUR_API_KEY_HERE", id="placeholder"),
        pytest.param("token: abcdefghijklmnopqrstuvwxyz", id="low-entropy-letters-only"),
        pytest.param("api_key = ${OPENAI_API_KEY}", id="template-variable"),
        pytest.param("https://user:password@example.com", id="uri-with-literal-password-word"),
        pytest.param("csrf_token=abc and sk-short", id="short-values"),
        pytest.param(
            "pk_live_51Hx9q2eZvKYlo2C8aB3dE4f is publishable", id="stripe-publishable-key"
        ),
        pytest.param("Use the AWS CLI with aws configure", id="prose-about-keys"),
    ],
)
def test_non_secrets_are_left_alone(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("<your-key>", True, id="angle-brackets"),
        pytest.param("xxxxxxxx", True, id="one-repeated-character"),
        pytest.param("sk-EXAMPLE-123", True, id="example-marker"),
        pytest.param("q8Rz3vT2", False, id="random-value"),
    ],
)
def test_placeholders(value: str, expected: bool) -> None:
    assert is_placeholder(value) is expected


def test_password_needs_two_kinds_of_characters_or_length() -> None:
    assert password_like("hunter2")
    assert not password_like("required")
    assert password_like("correcthorsebatterystaple")


def test_random_token_needs_digits_and_entropy() -> None:
    assert random_token("a8f5f167f44f4964e6c998dee827110c")
    assert not random_token("aaaaaaaaaaaaaaaa1")
