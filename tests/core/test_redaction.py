"""Redaction rule by rule: every credential key name, every joined key form, every value format.

Each case is written out here rather than read from the tables in ``provenir.core.credentials``:
a test generated from the table would lose its case together with the rule it should defend.
"""

from __future__ import annotations

import pytest

from provenir.core.credentials import find_credentials, has_long_run, is_credential_key, normalise_key
from provenir.core.redaction import REDACTED, redact, redact_text, redact_then_truncate

# -- key names ------------------------------------------------------------------------------------

#: Every whole key name whose value is a credential, whatever the value looks like.
KEY_NAMES = (
    "password", "passwd", "pwd", "passphrase", "pass_phrase", "pgpassword", "secret", "token",
    "api_key", "apikey", "access_key", "secret_key", "secret_access_key",
    "client_secret", "auth_token", "access_token", "refresh_token", "id_token", "session_token",
    "security_token", "bearer_token", "api_token", "oauth_token", "private_token", "private_key",
    "authorization", "proxy_authorization", "cookie", "set_cookie", "credential", "credentials",
    "hf_token", "hugging_face_hub_token", "huggingface_hub_token", "huggingface_token",
    "github_token", "gh_token", "gitlab_token", "slack_token", "bot_token", "npm_token",
    "pypi_token", "wandb_api_key", "connection_string", "conn_str", "account_key",
    "shared_access_key", "sas_token", "signing_secret", "webhook_secret", "jwt_secret",
)  # fmt: skip

#: Names that are credential keys as the last words of a longer name.
KEY_SUFFIXES = (
    "password", "passwd", "passphrase", "api_key", "apikey", "access_key", "secret_key",
    "secret_access_key", "client_secret", "private_key", "auth_token", "access_token",
    "refresh_token", "session_token", "security_token", "bearer_token", "api_token", "oauth_token",
    "private_token", "authorization", "signing_secret", "webhook_secret", "account_key",
    "connection_string",
)  # fmt: skip

#: Names that hold no credential although they contain a credential word.
NOT_KEYS = (
    "token_f1", "max_new_tokens", "tokenizer", "num_tokens", "signing_key_path", "eos_token", "sort_key",
    "is_secret", "secret_santa_count", "password_min_length", "key", "keys", "AWS Access Key", "pass", "auth",
)  # fmt: skip


@pytest.mark.parametrize("name", KEY_NAMES)
def test_each_credential_key_name_redacts_its_value(name: str) -> None:
    value = "plain-looking-value"  # no credential format: only the key name can redact it
    assert is_credential_key(name)
    assert redact({name: value, "note": "kept"}) == {name: REDACTED, "note": "kept"}
    assert redact({name.upper(): 12345}) == {name.upper(): REDACTED}


@pytest.mark.parametrize("suffix", KEY_SUFFIXES)
def test_each_joined_credential_key_form_redacts_its_value(suffix: str) -> None:
    camel = "myService" + "".join(w.capitalize() for w in suffix.split("_"))
    for name in (f"my_service_{suffix}", f"MY-SERVICE-{suffix.upper()}", camel):
        assert is_credential_key(name), name
        assert redact({"settings": {name: "plain-looking-value"}}) == {"settings": {name: REDACTED}}


@pytest.mark.parametrize("name", NOT_KEYS)
def test_names_that_only_contain_a_credential_word_are_kept(name: str) -> None:
    assert is_credential_key(name) is False
    assert redact({name: "plain-looking-value"}) == {name: "plain-looking-value"}


def test_key_names_are_normalised_from_any_case_and_separator() -> None:
    assert normalise_key("X-Api-Key") == "x_api_key"
    assert normalise_key("apiKey") == "api_key"
    assert normalise_key("API_KEY") == "api_key"
    assert normalise_key("HTTPSProxyAuthorization") == "https_proxy_authorization"
    assert normalise_key("__api..key__") == "api_key"


def test_under_a_credential_key_every_scalar_goes_and_the_shape_stays() -> None:
    # A mapping under a credential key keeps its keys; its values are judged by their own names.
    value = {"credentials": {"count": 1, "password": "x", "list": ["a"]}}
    assert redact(value) == {"credentials": {"count": 1, "password": REDACTED, "list": ["a"]}}
    assert redact({"token": ["a", 2, None, True, ["b"]]}) == {
        "token": [REDACTED, REDACTED, None, True, [REDACTED]]
    }
    assert redact({"password": ("a", "b")}) == {"password": [REDACTED, REDACTED]}
    assert redact({"token": None, "secret": True}) == {"token": None, "secret": True}
    assert redact({"api_key": [{"password": "x", "n": 3}]}) == {"api_key": [{"password": REDACTED, "n": 3}]}


def test_values_are_walked_through_lists_tuples_and_keys() -> None:
    key = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    assert redact([f"x {key}", (key,), 3, None]) == [
        "x [REDACTED:github_token]",
        ["[REDACTED:github_token]"],
        3,
        None,
    ]
    assert redact({f"note {key}": 1, 5: key}) == {
        "note [REDACTED:github_token]": 1,
        5: "[REDACTED:github_token]",
    }
    assert redact(2.5) == 2.5 and redact(None) is None


def test_redact_text_returns_the_kinds_it_found() -> None:
    text, kinds = redact_text("use AKIAIOSFODNN7EXAMPLE then ghp_" + "a1" * 18)
    assert text == "use [REDACTED:aws_access_key] then [REDACTED:github_token]"
    assert kinds == ["aws_access_key", "github_token"]
    assert redact_text("nothing here") == ("nothing here", [])


def test_truncation_cuts_the_redacted_text() -> None:
    text = "key AKIAIOSFODNN7EXAMPLE and more"
    assert redact_then_truncate(text, 10) == "key [REDAC"
    assert redact_then_truncate(text, 1000) == "key [REDACTED:aws_access_key] and more"


def test_a_long_run_is_fifteen_non_space_characters() -> None:
    assert has_long_run("a" * 15) and has_long_run("x " + "b" * 16)
    assert not has_long_run("a" * 14) and not has_long_run(("a" * 14 + " ") * 3)
    assert not has_long_run("a" * 10 + "\t" + "a" * 10)


# -- value formats --------------------------------------------------------------------------------


def _kinds(text: str) -> list[str]:
    return [s.kind for s in find_credentials(text)]


def _only(text: str, kind: str, secret: str) -> None:
    """``text`` holds exactly one credential, ``secret``, of ``kind``; the rest of the text is kept."""
    spans = find_credentials(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == [(kind, secret)], text
    redacted, kinds = redact_text(text)
    assert redacted == text.replace(secret, f"[REDACTED:{kind}]") and kinds == [kind]


_B40 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 base64 characters, mixed case and digits
_HEX32 = "0123456789abcdef0123456789ABCDEF"
_B88 = "Zm9vYmFy" * 10 + "Zm9vYm=="  # 86 base64 characters and its padding
_PEM_BODY = "MIIEowIBAAKCAQEA7bq9\nZ3Vlc3Mgd2hhdA==\n"

#: (kind, text, secret): one case per format and per literal prefix a format is found by.
FORMATS = [
    ("private_key", f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{_PEM_BODY}-----END RSA PRIVATE KEY-----\nbye",
     f"-----BEGIN RSA PRIVATE KEY-----\n{_PEM_BODY}-----END RSA PRIVATE KEY-----"),
    ("private_key", f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{_PEM_BODY}",
     f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{_PEM_BODY}"),
    ("anthropic_key", "use sk-ant-api03-" + "Ab1_-" * 5 + " now", "sk-ant-api03-" + "Ab1_-" * 5),
    ("anthropic_key", "use sk-ant-admin01-" + "Zy9" * 8 + " now", "sk-ant-admin01-" + "Zy9" * 8),
    ("openai_key", "OPENAI sk-proj-" + "a1B2c3" * 4 + " ok", "sk-proj-" + "a1B2c3" * 4),
    ("openai_key", "key sk-" + "a1B2c3D4" * 6 + " ok", "sk-" + "a1B2c3D4" * 6),
    ("stripe_key", "stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + " ok", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("stripe_key", "stripe rk_test_" + "4eC39HqLyjWDarjtT1zdp7dc" + " ok", "rk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    ("aws_access_key", "id AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "id ASIAIOSFODNN7EXAMPLE ok", "ASIAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "id ABIAIOSFODNN7EXAMPLE ok", "ABIAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "id ACCAIOSFODNN7EXAMPLE ok", "ACCAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "id A3T2IOSFODNN7EXAMPLE ok", "A3T2IOSFODNN7EXAMPLE"),
    ("aws_secret_access_key", f"AWS_SECRET_ACCESS_KEY={_B40} ok", _B40),
    ("aws_secret_access_key", f"awsSecretKey: '{_B40}'", _B40),
    ("google_api_key", "maps AIzaSyD-1234567890abcdefghijklmnopqrstu ok", "AIzaSyD-1234567890abcdefghijklmnopqrstu"),
    ("azure_key", f"AccountName=x;AccountKey={_B88};EndpointSuffix=core", _B88),
    ("azure_key", f"Endpoint=sb://x/;SharedAccessKeyName=r;SharedAccessKey={_B88[:44]}", _B88[:44]),
    ("azure_key", "https://x.blob.core.windows.net/c?sv=2022&sig=AbCdEf1234567890XyZ%2BqR%3D ok",
     "AbCdEf1234567890XyZ%2BqR%3D"),
    ("azure_key", f"AZURE_OPENAI_KEY = {_HEX32} ok", _HEX32),
    ("azure_key", f"Ocp-Apim-Subscription-Key: {_HEX32} ok", _HEX32),
    ("azure_key", f"subscription_key = {_HEX32} ok", _HEX32),
    ("azure_key", f"apim_primary = {_HEX32} ok", _HEX32),
    ("slack_token", "bot xoxb-1234567890-abcdefghij ok", "xoxb-1234567890-abcdefghij"),
    ("slack_token", "post https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXX ok",
     "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXX"),
    ("huggingface_token", "hub hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH" + " ok", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    *(("github_token", f"git {p}_" + "A1b2C3d4E5" * 3 + " ok", f"{p}_" + "A1b2C3d4E5" * 3)
      for p in ("ghp", "gho", "ghu", "ghs", "ghr")),
    ("github_token", "git github_pat_" + "11ABCDEFG0" * 3 + " ok", "github_pat_" + "11ABCDEFG0" * 3),
    *(("gitlab_token", f"ci {p}-" + "x1Y2z3W4v5" * 2 + " ok", f"{p}-" + "x1Y2z3W4v5" * 2)
      for p in ("glpat", "gldt", "glft", "glsoat", "glrt", "glptt", "glimt", "glagent", "gloas", "glcbt")),
    ("gitlab_token", "runner GR1348941" + "x1Y2z3W4v5" * 2 + " ok", "GR1348941" + "x1Y2z3W4v5" * 2),
    ("jwt", "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl ok", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),
    ("pypi_token", "upload pypi-AgE" + "Ij2kL3mN4o" * 5 + " ok", "pypi-AgE" + "Ij2kL3mN4o" * 5),
    ("npm_token", "npm npm_" + "aB3dE6gH9j" * 4 + " ok", "npm_" + "aB3dE6gH9j" * 4),
    ("sendgrid_key", "mail SG.abcdefghij1234567.ABCDEFGHIJ1234567 ok", "SG.abcdefghij1234567.ABCDEFGHIJ1234567"),
    ("bearer_token", "header Bearer abcDEF123456ghiJKL ok", "abcDEF123456ghiJKL"),
    ("bearer_token", "Authorization: Basic dXNlcjpwYXNzd29yZDEyMw== ok", "dXNlcjpwYXNzd29yZDEyMw=="),
    ("url_credentials", "db postgres://admin:s3cr3tPw@db.example.com/x ok", "s3cr3tPw"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "text", "secret"), FORMATS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(FORMATS)]
)
def test_each_credential_format_is_redacted_whole_and_the_rest_kept(
    kind: str, text: str, secret: str
) -> None:
    _only(text, kind, secret)


@pytest.mark.parametrize("prefix", ["AKIA", "ASIA", "ABIA", "ACCA", "A3T2"])
def test_an_aws_secret_key_next_to_its_key_id_is_found_by_the_id(prefix: str) -> None:
    key_id = prefix + "IOSFODNN7EXAMPLE"
    text = f"{key_id},{_B40}"
    spans = find_credentials(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == [
        ("aws_access_key", key_id),
        ("aws_secret_access_key", _B40),
    ]
    # A 40-character git SHA next to a key id is no secret key: it has no upper case.
    sha = "3f786850e387550fdab836ed7e6dc881de23001b"
    assert _kinds(f"AKIAIOSFODNN7EXAMPLE {sha}") == ["aws_access_key"]


@pytest.mark.parametrize(
    "value",
    [
        "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN",  # upper case only
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmn",  # lower case only
        "ABCDEFGHIJKLMNOPQRSTabcdefghijklmnopqrst",  # no digit and no / or +
    ],
)
def test_an_aws_secret_needs_upper_lower_and_a_digit_or_slash(value: str) -> None:
    assert _kinds(f"AKIAIOSFODNN7EXAMPLE {value}") == ["aws_access_key"]
    for other in ("ABCDEFGHIJKLMNOPQRSTabcdefghijklmnopqrs/", "ABCDEFGHIJKLMNOPQRSTabcdefghijklmnopqrs+"):
        assert _kinds(f"AKIAIOSFODNN7EXAMPLE {other}") == ["aws_access_key", "aws_secret_access_key"]


def test_formats_with_a_required_digit_skip_words() -> None:
    assert _kinds("sk-" + "abcdefghij" * 3) == []  # sk- and letters: prose, not an OpenAI key
    assert _kinds("Bearer abcdefghijklmnopqrstuvwxyz") == []


#: One assignment of each kind for each credential word the assignment rule is found by.
ASSIGNMENTS = {
    "quoted": '{name} = "Hunter2xyz"',
    "unquoted": "{name}=Hunter2xyz",
    "flag": "run --{name} Hunter2xyz now",
    "colon": "{name}: Hunter2xyz",
}
WORDS = {
    "pass": "db_password",
    "pwd": "PWD",
    "secret": "client_secret",
    "token": "auth_token",
    "key": "API-KEY",
}


@pytest.mark.parametrize("form", ASSIGNMENTS)
@pytest.mark.parametrize("word", WORDS)
def test_each_assignment_form_is_found_for_each_credential_word(form: str, word: str) -> None:
    name = WORDS[word].replace("_", "-") if form == "flag" else WORDS[word]
    _only(ASSIGNMENTS[form].format(name=name), "assignment", "Hunter2xyz")


@pytest.mark.parametrize(
    "text",
    [
        'password = "none"',
        'password = "NULL"',
        "password = nil",
        'token: "true"',
        "token = False",
        'secret = "undefined"',
        'password: "required"',
        'api_key = "optional"',
        "password: str = 'str'",
        "password = 'string'",
        "token = bytes",
        "secret: SecretStr = 'secretstr'",
        "token = 'int'",
        "token = bool",
        "token = 'any'",
        "password = 'empty'",
        "password = 'unset'",
        "password = 'redacted'",
        "password = 'hidden'",
        "password = 'masked'",
    ],
)
def test_type_names_and_null_words_are_not_assigned_secrets(text: str) -> None:
    assert find_credentials(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "password = user_pass",
        "password = db_pwd",
        "password = app_secret",
        "password = api_token",
        "password = sshkey",
        "password = basic_auth",
        "password = aws_creds",
    ],
)
def test_a_variable_named_for_a_credential_is_not_a_value(text: str) -> None:
    assert find_credentials(text) == []


def test_short_values_and_short_numbers_are_not_secrets() -> None:
    assert find_credentials('password = "ab"') == []
    assert _kinds('password = "abc"') == ["assignment"]
    assert find_credentials("max_token: 512") == [] and find_credentials("token = 12345") == []
    assert find_credentials("token = 1.234") == []
    assert _kinds("token = 1.2345") == ["assignment"]
    assert _kinds("token = 123456") == ["assignment"]
    assert _kinds("token = 1.2.34") == ["assignment"]


def test_after_a_colon_a_short_lower_case_word_is_prose() -> None:
    assert find_credentials("Token: subword") == []
    assert _kinds("Token: subwords") == ["assignment"]
    assert _kinds("Token: Subword") == ["assignment"]
    assert _kinds("Token: subw0rd") == ["assignment"]


def test_an_unquoted_value_keeps_the_punctuation_after_it() -> None:
    _only("(password=Hunter2xyz).", "assignment", "Hunter2xyz")
    text = "(password=Hunter2xyz)."
    span = find_credentials(text)[0]
    assert text[span.end :] == ")."


def test_case_is_folded_even_where_lower_case_changes_the_length() -> None:
    # "İ".lower() is two characters: offsets are then found case-insensitively in the original text.
    text = "İstanbul PASSWORD=Hunter2xyz AWS_SECRET=" + _B40
    spans = find_credentials(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == [
        ("assignment", "Hunter2xyz"),
        ("aws_secret_access_key", _B40),
    ]


def test_overlapping_matches_merge_and_the_longest_names_them() -> None:
    ghp = "ghp_" + "A1b2C3d4E5" * 3
    # The whole quoted value is the longest part: it names the merged span.
    assert redact_text(f'password = "x {ghp} y"')[0] == 'password = "[REDACTED:assignment]"'
    # Equal spans: the earlier, more specific format names it.
    assert redact_text(f'password = "{ghp}"')[0] == 'password = "[REDACTED:github_token]"'
    assert (
        redact_text(f"aws_secret_access_key = {_B40}")[0]
        == "aws_secret_access_key = [REDACTED:aws_secret_access_key]"
    )
    # A longer part that starts later renames the span it extends.
    text = f"token=x-----BEGIN PRIVATE KEY-----\n{_PEM_BODY}-----END PRIVATE KEY----- done"
    assert redact_text(text)[0] == "token=[REDACTED:private_key] done"


def test_two_separate_secrets_keep_the_text_between_them() -> None:
    text = "a AKIAIOSFODNN7EXAMPLE b ghp_" + "A1b2C3d4E5" * 3 + " c"
    assert redact_text(text)[0] == "a [REDACTED:aws_access_key] b [REDACTED:github_token] c"


def test_prose_without_any_sign_or_long_run_is_not_scanned() -> None:
    assert find_credentials("a short sentence with a token and a key") == []
    assert find_credentials("xoxb-1234567890-abc", long_run=False) == []
    assert _kinds("xoxb-1234567890-abcdefghij") == ["slack_token"]
