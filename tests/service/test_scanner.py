"""The sensitive-data scanner: every kind it promises, no false alarm on ordinary text, Luhn-checked cards, secrets
over personal data, a bound on findings; the prompt preparation that redacts, refuses or anonymises."""

from __future__ import annotations

import pytest
import re2

from wallbounce_service import scanner
from wallbounce_service.redact import Anonymiser, SecretsFound, redact, without_secrets
from wallbounce_service.scanner import TooManyFindings, luhn_ok, scan

# (kind, text, the part that must go) — fake values in each vendor's published format
CASES = [
    ("openai_key", "key sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx0123 here", "sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx0123"),
    ("anthropic_key", "use sk-ant-api03-AbCdEfGhIjKlMnOpQrSt-uvwx now", "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt-uvwx"),
    ("google_api_key", "AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890abcdefghijklmnopqrstu"),
    ("google_oauth_token", "ya29.a0AfH6SMBx3AbCdEfGhIjKlMnOpQr", "ya29.a0AfH6SMBx3AbCdEfGhIjKlMnOpQr"),
    ("aws_access_key", "id AKIAIOSFODNN7EXAMPLE.", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("github_token", "token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123",
     "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123"),
    ("gitlab_token", "glpat-AbCdEfGhIjKlMnOpQrSt", "glpat-AbCdEfGhIjKlMnOpQrSt"),
    ("slack_token", "xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("slack_webhook", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX",
     "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX"),
    ("stripe_key", "sk_live_AbCdEfGhIjKlMnOpQrSt", "sk_live_AbCdEfGhIjKlMnOpQrSt"),
    ("huggingface_token", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"),
    ("npm_token", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("sendgrid_key", "SG.AbCdEfGhIjKlMnOpQrSt.AbCdEfGhIjKlMnOpQrStUvWxYz",
     "SG.AbCdEfGhIjKlMnOpQrSt.AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("azure_storage_key", "AccountName=x;AccountKey=" + "A" * 86 + "==;", "A" * 86 + "=="),
    ("jwt", "t=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n",
     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n"),
    ("bearer_token", "Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
    ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAA"),
    ("private_key", "cut: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1L7VLPHCgcBIjt",
     "MIIEpAIBAAKCAQEAu1SU1L7VLPHCgcBIjt"),
    ("url_password", "postgres://admin:S3cr3tPass@db.internal:5432/app", "S3cr3tPass"),
    ("password", 'DB_PASSWORD="hunter2hunter"', "hunter2hunter"),
    ("password", "password: correct-horse-battery", "correct-horse-battery"),
    ("password", '{"api_key": "abcdef123456"}', "abcdef123456"),
    ("password", "my password is hunter22", "hunter22"),
    ("password", "パスワードは abcd1234 です", "abcd1234"),
    ("wallbounce_key", "wbk_AbCdEfGhIjKlMnOpQrStUv", "wbk_AbCdEfGhIjKlMnOpQrStUv"),
    ("card_number", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
    ("card_number", "5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("email", "mail alice.smith+test@example.co.jp now", "alice.smith+test@example.co.jp"),
    ("phone", "call 090-1234-5678 today", "090-1234-5678"),
    ("phone", "call +1 415 555 0100", "+1 415 555 0100"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), CASES)
def test_each_kind_is_found_and_masked(kind: str, text: str, secret: str) -> None:
    found = [(f.kind, text[f.start : f.end]) for f in scan(text)]
    assert any(k == kind and secret in value for k, value in found), found
    assert secret not in redact(text)
    sent = Anonymiser().anonymise(text)
    assert secret not in sent
    if kind in scanner.SECRET_KINDS:
        assert f"[REDACTED_{kind.upper()}]" in sent


@pytest.mark.parametrize(
    "text",
    [
        "Enable keep-alive on 3 of 12 load balancers by 2026-11-30.",
        "Upgrade from 1.2.3 to 10.0.0.1 at 12:30, build 20261130.",
        "Order 4111 1111 1111 1112 is late",  # fails the Luhn check: not a card (and not a phone number either)
        "Use sk-learn and tokens_per_min: 100000; password policy applies.",
        "The SHA-256 is 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.",
        "キープアライブはアイドル接続を保持します。",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    findings = [(f.kind, text[f.start : f.end]) for f in scan(text)]
    assert not [f for f in findings if f[0] != "phone"], findings
    if "4111" not in text:
        assert findings == [] and redact(text) == text


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("5500000000000004") and not luhn_ok("4111111111111112")


def test_a_password_in_a_url_is_a_secret_not_an_email_address() -> None:
    text = "postgres://admin:S3cr3tPass@db.internal/app"
    assert [f.kind for f in scan(text)] == ["url_password"]


def test_every_pattern_runs_on_re2_the_linear_time_engine() -> None:
    # RE2 has no backtracking, so no input makes a match quadratic; Python's re would (the old e-mail regex did)
    assert all(type(regex) is type(re2.compile("x")) for _, regex, _, _, _ in scanner._COMPILED)
    assert scan("a" * 32_000) == [] and scan("a." * 16_000) == []  # the old quadratic inputs


def test_findings_are_bounded() -> None:
    with pytest.raises(TooManyFindings):
        scan("password=abcd " * 600, max_findings=500)
    assert redact("a@b.io " * 1000) == "[REDACTED: too many sensitive values]"


def test_refuse_names_the_kinds_and_never_the_values() -> None:
    anon = Anonymiser(action="refuse")
    with pytest.raises(SecretsFound) as err:
        anon.anonymise("AKIAIOSFODNN7EXAMPLE and password=hunter2hunter, mail bob@example.com")
    assert err.value.kinds == ["aws_access_key", "password"] and "hunter2" not in str(err.value)
    assert anon.anonymise("mail bob@example.com") == "mail <EMAIL_1>"  # personal data alone is anonymised


def test_anonymiser_round_trip_and_without_secrets() -> None:
    anon = Anonymiser()
    prompt = "Mail bob@example.com or call 03-1234-5678; cc bob@example.com. Key sk-proj-abcdefghijklmnop1234."
    masked = anon.anonymise(prompt)
    assert "bob@example.com" not in masked and "03-1234-5678" not in masked and "abcdefghijklmnop1234" not in masked
    assert masked.count("<EMAIL_1>") == 2 and "<PHONE_1>" in masked and "[REDACTED_OPENAI_KEY]" in masked
    assert anon.restore("Reply to <EMAIL_1>") == "Reply to bob@example.com"
    assert without_secrets(prompt) == prompt.replace("sk-proj-abcdefghijklmnop1234", "[REDACTED_OPENAI_KEY]")
