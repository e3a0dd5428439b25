"""The token file's validation, bearer header parsing, constant-time matching and scope globs."""

from __future__ import annotations

import hashlib
import types
from typing import Any

import pytest
import yaml

from service.auth import tokens as tokens_module
from service.auth.tokens import Principal, Scope, TokenFileError, Tokens, parse_tokens
from service.errors import Forbidden, Unauthorized
from tests.auth.tokenfiles import entry

SECRET = "ms_correct-horse-battery-staple"
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()
OTHER = hashlib.sha256(b"another").hexdigest()


def doc(*entries: Any) -> str:
    return yaml.safe_dump({"tokens": list(entries)}, sort_keys=False)


def three() -> Tokens:
    return parse_tokens(
        doc(
            entry("web", "t-web", ["infer:mnist*"]),
            entry("eval-job", "t-eval", ["infer", "evaluate"]),
            entry("ops", "t-ops", ["infer", "evaluate", "admin", "metrics"]),
        ),
        "tokens.yaml",
    )


def test_a_valid_file_lists_its_tokens_in_order() -> None:
    assert three().names == ("web", "eval-job", "ops")


def test_the_issue_example_layout_parses() -> None:
    text = f"""
tokens:
  - {{name: web-frontend, sha256: {DIGEST}, scopes: [infer]}}
  - {{name: ops,          sha256: "{OTHER.upper()}", scopes: [infer, evaluate, admin, metrics]}}
"""
    tokens = parse_tokens(text, "t.yaml")
    assert tokens.authenticate(f"Bearer {SECRET}").name == "web-frontend"
    assert len(tokens) == 2


def test_an_empty_list_is_valid_and_lets_nobody_in() -> None:
    tokens = parse_tokens("tokens: []\n", "t.yaml")
    with pytest.raises(Unauthorized):
        tokens.authenticate(f"Bearer {SECRET}")


GOOD = {"name": "a", "sha256": DIGEST, "scopes": ["infer"]}

INVALID = [
    ("", "t.yaml: is empty"),
    ("- a\n", "expected a mapping with a 'tokens' list"),
    ("tokens: {}\n", "'tokens' must be a list"),
    ("tokens: []\nextra: 1\n", "unknown key(s) extra"),
    ("tokens: [5]\n", "tokens[0]: must be a mapping"),
    (doc({"sha256": DIGEST, "scopes": ["infer"]}), "tokens[0]: name must be"),
    (doc({**GOOD, "name": "a b"}), "got 'a b'"),
    (doc({**GOOD, "name": ""}), "name must be"),
    (doc({**GOOD, "token": "x"}), "tokens[0] 'a': unknown key(s) token"),
    (doc({"name": "a", "sha256": DIGEST}), "tokens[0] 'a': missing scopes"),
    (doc({"name": "a", "scopes": ["infer"]}), "missing sha256"),
    (doc({**GOOD, "sha256": DIGEST[:-1]}), "sha256 must be 64 hex digits"),
    (doc({**GOOD, "sha256": "z" * 64}), "sha256 must be 64 hex digits"),
    ("tokens: [{name: a, sha256: 12, scopes: [infer]}]\n", "quoted string of 64 hex digits"),
    (doc({**GOOD, "scopes": []}), "scopes must be a non-empty list"),
    (doc({**GOOD, "scopes": "infer"}), "scopes must be a non-empty list"),
    (doc({**GOOD, "scopes": [7]}), "scope 7 is not a string"),
    (doc({**GOOD, "scopes": ["admn"]}), "'admn' is not one of infer, evaluate, admin, metrics"),
    (doc({**GOOD, "scopes": ["infer:"]}), "model pattern after ':'"),
    (doc({**GOOD, "scopes": ["infer:a/b"]}), "model pattern after ':'"),
    (doc({**GOOD, "scopes": ["infer", "infer"]}), "scope 'infer' is listed twice"),
    (doc(GOOD, {**GOOD, "sha256": OTHER}), "tokens[1] 'a': the name is already used by tokens[0]"),
    (doc(GOOD, {**GOOD, "name": "b"}), "tokens[1] 'b': the same sha256 as 'a'"),
    ("tokens: [\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_an_invalid_file_is_refused_with_a_message_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_tokens(text, "t.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("t.yaml: ")


@pytest.mark.parametrize(
    "text",
    [
        doc({**GOOD, "sha256": SECRET}),  # the token pasted where its digest belongs
        f"tokens:\n  - {{name: a, sha256: {SECRET}, scopes: [infer]\n",  # ... on a line YAML rejects
    ],
)
def test_errors_never_echo_what_was_in_the_sha256_field(text: str) -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_tokens(text, "t.yaml")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "header", [f"Bearer {SECRET}", f"bearer {SECRET}", f"BEARER   {SECRET}  ", f"  Bearer\t{SECRET}"]
)
def test_a_known_token_authenticates_whatever_the_scheme_case_and_spacing(header: str) -> None:
    tokens = parse_tokens(doc(GOOD), "t.yaml")
    principal = tokens.authenticate(header)
    assert principal.name == "a"
    assert [str(s) for s in principal.scopes] == ["infer"]


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Bearer", "invalid_request"),
        ("Bearer   ", "invalid_request"),
        (f"Basic {SECRET}", "invalid_request"),
        (f"Token {SECRET}", "invalid_request"),
        (f"Bearer {SECRET} extra", "invalid_request"),
        (SECRET, "invalid_request"),
        ("Bearer ms_unknown", "invalid_token"),
        (f"Bearer {SECRET}x", "invalid_token"),
        ("Bearer \udcff\ud800", "invalid_token"),  # undecodable bytes must still fail cleanly
    ],
)
def test_missing_malformed_or_unknown_headers_are_401_with_a_bearer_challenge(
    header: str | None, error: str | None
) -> None:
    tokens = parse_tokens(doc(GOOD), "t.yaml")
    with pytest.raises(Unauthorized) as caught:
        tokens.authenticate(header)
    challenge = caught.value.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="model-serving"')
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    assert caught.value.status == 401
    assert SECRET not in caught.value.message


def test_every_entry_is_compared_whether_the_token_matches_first_last_or_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = three()
    calls: list[tuple[bytes, bytes]] = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(tokens_module, "hmac", types.SimpleNamespace(compare_digest=counting))
    for header, name in [("Bearer t-web", "web"), ("Bearer t-ops", "ops"), ("Bearer nobody", None)]:
        calls.clear()
        if name is None:
            with pytest.raises(Unauthorized):
                tokens.authenticate(header)
        else:
            assert tokens.authenticate(header).name == name
        assert len(calls) == len(tokens)
        # Digests are compared, never the token text, so lengths are equal and leak nothing.
        assert {len(a) for a, _ in calls} == {len(b) for _, b in calls} == {hashlib.sha256().digest_size}


SCOPE_TABLE = [
    ("infer", "infer", None, True),
    ("infer", "infer", "anything", True),
    ("infer", "evaluate", "mnist", False),
    ("infer:mnist*", "infer", "mnist", True),
    ("infer:mnist*", "infer", "mnist_cnn", True),
    ("infer:mnist*", "infer", "linear", False),
    ("infer:mnist*", "infer", "xmnist", False),
    ("infer:mnist*", "infer", None, False),  # a narrowed scope does not cover model lists
    ("infer:mnist*", "evaluate", "mnist", False),
    ("evaluate:digits", "evaluate", "digits", True),
    ("evaluate:digits", "evaluate", "digits2", False),
    ("evaluate:digits", "evaluate", "Digits", False),  # case-sensitive, like model folders
    ("admin:mnist_?", "admin", "mnist_a", True),
    ("admin:mnist_?", "admin", "mnist_ab", False),
    ("metrics:[ab]*", "metrics", "binary", True),
    ("metrics:[!ab]*", "metrics", "binary", False),
]


@pytest.mark.parametrize(("granted", "scope", "model", "allowed"), SCOPE_TABLE)
def test_scopes_and_model_globs(granted: str, scope: str, model: str | None, allowed: bool) -> None:
    principal = Principal("p", (Scope.parse(granted),))
    assert principal.allows(scope, model) is allowed
    assert str(Scope.parse(granted)) == granted


def test_any_one_of_several_scopes_is_enough() -> None:
    principal = Principal("p", (Scope.parse("infer:mnist*"), Scope.parse("infer:linear")))
    assert principal.allows("infer", "linear")
    assert principal.allows("infer", "mnist")
    assert not principal.allows("infer", "binary")


def test_require_names_the_token_scope_and_model_but_never_the_token() -> None:
    principal = three().authenticate("Bearer t-web")
    principal.require("infer", "mnist")
    with pytest.raises(Forbidden) as caught:
        principal.require("infer", "linear")
    message = caught.value.message
    assert caught.value.status == 403
    assert all(part in message for part in ("'web'", "'infer'", "'linear'", "infer:mnist*"))
    assert "t-web" not in message
    with pytest.raises(Forbidden, match=r"may not use scope 'metrics' \(it has: infer:mnist\*\)\.$"):
        principal.require("metrics")
    with pytest.raises(Forbidden, match="narrowed to models does not cover routes that name no model"):
        principal.require("infer")


def test_asking_about_an_unknown_scope_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="Unknown scope 'infers'"):
        three().authenticate("Bearer t-ops").allows("infers", None)


def test_tokens_repr_shows_names_only() -> None:
    assert repr(three()) == "Tokens(web, eval-job, ops)"
