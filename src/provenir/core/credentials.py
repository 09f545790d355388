"""What a credential looks like: value formats and the key names that hold one.

One table serves both the dataset secret scanner (:mod:`provenir.governance.scanners`, which
adds these spans to detect-secrets' findings before masking) and the audit-log redaction
(:mod:`provenir.core.redaction`)::

    from provenir.core.credentials import find_credentials, is_credential_key

    [(s.kind, s.start, s.end) for s in find_credentials("key AKIAIOSFODNN7EXAMPLE")]
    # [('aws_access_key', 4, 24)]
    is_credential_key("OPENAI_API_KEY"), is_credential_key("token_f1")   # (True, False)

Every span covers the secret *whole*, to the end of the token or of the quoted string (a mask
that leaves the tail of a key in clear is no mask); overlapping matches are merged into one.

Value formats (``kind``: what is matched)

==========================  ================================================================
``private_key``             the whole PEM block, ``-----BEGIN ... PRIVATE KEY-----`` to its
                            ``END`` line (any key type; to the end of the text if unclosed)
``anthropic_key``           ``sk-ant-api03-...``, ``sk-ant-admin01-...`` (any ``sk-ant-<kind>NN-``)
``openai_key``              ``sk-...``, ``sk-proj-...``, ``sk-svcacct-...``, ``sk-admin-...``
``aws_access_key``          access key ids ``AKIA``/``ASIA``/``ABIA``/``ACCA`` + 16
``aws_secret_access_key``   40 base64 characters, by context: after ``aws_secret_access_key``,
                            ``secret_access_key``, ``AWS_SECRET`` ... ``=``/``:``, or within a
                            short distance after an access key id
``google_api_key``          ``AIza`` + 35
``azure_key``               ``AccountKey=...``, ``SharedAccessKey=...``, and 32-hex or
                            88-base64 keys assigned to an Azure-named or subscription key
``slack_token``             ``xox[abposre]-...`` tokens, ``hooks.slack.com`` webhook URLs
``stripe_key``              ``sk_live_``, ``rk_live_``, ``sk_test_``, ``rk_test_``
``huggingface_token``       ``hf_`` + 34 or more
``github_token``            ``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``
``gitlab_token``            ``glpat-`` and GitLab's other prefixed tokens
``jwt``                     three base64url segments, the first starting ``eyJ``
``pypi_token``, ...         PyPI, npm and SendGrid tokens
``bearer_token``            the credential after ``Bearer`` / ``Authorization: Basic``
``url_credentials``         the password in ``scheme://user:password@host``
``assignment``              the value of ``password|passwd|pwd|passphrase|secret|token|
                            api_key|apikey|access_key|secret_key`` (also as the end of a longer
                            name: ``DB_PASSWORD``, ``client_secret``, ``auth_token``) after
                            ``=``, ``:``, ``:=`` or ``=>``, quoted or not, or after a
                            ``--password``-style command-line flag; code references
                            (``os.environ[...]``, ``self.token``, ``None``) and placeholders
                            (``<...>``, ``${...}``) are not values
==========================  ================================================================

Plain regular expressions on purpose: the audit log runs them on every write, so they must be
cheap and import nothing heavy; each pattern is tried only when one of its literal hints
occurs in the text. Entropy is deliberately not a rule here (dataset and manifest hashes are
high-entropy and must stay readable); AWS secret keys and Azure keys, which have no prefix,
are recognised by the name or the key id next to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# -- value formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialPattern:
    """One credential format.

    ``regex`` marks the secret with named groups starting ``s`` (the first that took part is
    the secret) or, without such groups, is secret as a whole match. It is tried only if one of
    ``hints`` occurs in the text and, when ``needs`` is set, one of ``needs`` too. A ``fold``
    pattern is case-insensitive: it is written in lower case and run on ``text.lower()``
    (a plain scan is several times faster than ``re.IGNORECASE``; offsets are the same
    whenever the lengths are, else ``any_case`` runs on the text). ``check`` may reject a
    candidate value (taken from the original text).
    """

    kind: str
    label: str
    regex: re.Pattern[str]
    hints: tuple[str, ...]
    fold: bool = False
    check: Callable[[str], bool] | None = None
    needs: tuple[str, ...] = ()
    any_case: re.Pattern[str] | None = None

    @property
    def secret_groups(self) -> tuple[str, ...]:
        """Names of the groups that hold the secret (empty: the whole match)."""
        return tuple(n for n in self.regex.groupindex if n.startswith("s"))


@dataclass(frozen=True)
class CredentialSpan:
    """``text[start:end]`` is a credential of ``kind`` (``label`` is the scanner's type name)."""

    kind: str
    label: str
    start: int
    end: int


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _mixed_base64(value: str) -> bool:
    # An AWS secret key is 40 random base64 characters: upper, lower and digits or /+ all but
    # surely occur. A 40-hex digest (git SHA, sha1) has no upper case and is not one.
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() or c in "/+" for c in value)
    )


# Code that *reads* a credential: ``self.token``, ``os.environ["X"]``, ``get_password()``.
_REFERENCE = re.compile(r"^(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[A-Za-z_$][\w$.]*[(\[].*)$")
# Placeholders and tokenizer special tokens: ``<pad>``, ``[CLS]``, ``${VAR}``, ``$VAR``, ``***``.
_PLACEHOLDER = re.compile(
    r"^(?:<[^>]*>?|\[[A-Za-z_]+\]|\$\{.*|\$[A-Z_][A-Z0-9_]*|\{\{.*|%[(s].*|\*+|x+|X+|\.{3}|…|-+"
    r"|\[REDACTED.*)$"
)
_NOT_VALUES = frozenset(
    {
        "none", "null", "nil", "true", "false", "undefined", "required", "optional", "str", "string",
        "bytes", "secretstr", "int", "bool", "any", "empty", "unset", "redacted", "hidden", "masked",
    }
)  # fmt: skip
_UNQUOTED_TAIL = ".)]}>"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREDENTIAL_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred")


def _assigned_value(value: str) -> bool:
    """True when an assignment's value looks like a literal secret, not code or a placeholder."""
    v = value.strip()
    if len(v) < 3 or v.lower() in _NOT_VALUES or _PLACEHOLDER.match(v):
        return False
    # Short plain numbers are counts and ids (``max_token: 512``), not secrets.
    return not (v.replace(".", "", 1).isdigit() and len(v) < 6)


def _unquoted_value(value: str) -> bool:
    """Unquoted values: also not a code reference (``self.token``, ``os.environ["X"]``) nor a
    variable named for what it holds (``token = token``, ``password = new_password``)."""
    v = value.rstrip(_UNQUOTED_TAIL)
    if not _assigned_value(v) or _REFERENCE.match(v):
        return False
    return not (_IDENTIFIER.match(v) and any(word in v.lower() for word in _CREDENTIAL_WORDS))


def _prose_colon_value(value: str) -> bool:
    # ``Token: subword`` in prose is a definition, not a credential: after a colon, an
    # unquoted value of only lower-case letters needs 8+ characters to count.
    v = value.rstrip(_UNQUOTED_TAIL)
    return _unquoted_value(v) and not (v.isalpha() and v.islower() and len(v) < 8)


# Names whose assigned value is a secret (the end of a longer name counts: ``DB_PASSWORD``).
_ASSIGNED_NAMES = r"(?:pass(?:wd|word|phrase)|pwd|secret|token|(?:api|access|secret)[_-]?key|apikey)"
_KEY_END = r"\\?[\"']?"  # a quoted key's closing quote (or an escaped one, in JSON inside a string)
_SEP = (
    r"[ \t]*(?::[ \t]*(?:str|bytes|secretstr|optional\[str\]|str[ \t]*\|[ \t]*none)[ \t]*=|=>|:=|=|:)[ \t]*"
)
_QUOTED_VALUE = (
    r"(?:\\\"(?P<s1>(?:[^\"\\\n]|\\(?!\"))+)\\\""
    r"|\"(?P<s2>(?:[^\"\\\n]|\\.)+)\""
    r"|'(?P<s3>(?:[^'\\\n]|\\.)+)'"
    r"|`(?P<s4>[^`\n]+)`)"
)
# Unquoted values end at a space, quote, comma or semicolon; after "=" also at "&" (a URL query).
_UNQUOTED_VALUE = r"(?P<s5>[^\s\"'`,;&]+)"
_UNQUOTED_COLON_VALUE = r"(?P<s5>[^\s\"'`,;]+)"
_B64_40 = r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
_GITLAB_PREFIXES = ("glpat", "gldt", "glft", "glsoat", "glrt", "glptt", "glimt", "glagent", "gloas", "glcbt")
_AWS_ID = r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"


def _p(
    kind: str,
    label: str,
    regex: str,
    hints: Iterable[str],
    *,
    fold: bool = False,
    check: Callable[[str], bool] | None = None,
    needs: Iterable[str] = (),
) -> CredentialPattern:
    any_case = re.compile(regex, re.IGNORECASE) if fold else None
    return CredentialPattern(
        kind, label, re.compile(regex), tuple(hints), fold, check, tuple(needs), any_case
    )


def _assignment(regex: str, *, check: Callable[[str], bool], needs: Iterable[str]) -> CredentialPattern:
    """One form of a secret assigned to a secret-sounding name (``password = ...``, ``--api-key ...``)."""
    return _p(
        "assignment",
        "Secret Keyword",
        regex,
        ["pass", "pwd", "secret", "token", "key"],
        fold=True,
        check=check,
        needs=needs,
    )


#: Every value format, most specific first (on equal spans the earlier one names the finding).
PATTERNS: tuple[CredentialPattern, ...] = (
    _p(
        "private_key",
        "Private Key",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
        ["PRIVATE KEY"],
    ),
    _p(
        "anthropic_key",
        "Anthropic API Key",
        r"(?<![A-Za-z0-9_-])sk-ant-[a-z]{2,10}\d{0,3}-[A-Za-z0-9_-]{20,}",
        ["sk-ant-"],
    ),
    _p(
        "openai_key",
        "OpenAI Token",
        r"(?<![A-Za-z0-9_-])sk-(?!ant-)(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{20,}",
        ["sk-"],
        check=_has_digit,
    ),
    _p(
        "stripe_key",
        "Stripe Access Key",
        r"(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}",
        ["k_live_", "k_test_"],
    ),
    _p("aws_access_key", "AWS Access Key", _AWS_ID, ["AKIA", "ASIA", "ABIA", "ACCA", "A3T"]),
    _p(
        "aws_secret_access_key",
        "AWS Secret Access Key",
        # By name: aws_secret_access_key, secret_access_key, AWS_SECRET, awsSecretKey...
        r"(?:aws[_-]?secret(?:[_-]?access)?(?:[_-]?key)?|secret[_-]?access[_-]?key)"
        + _KEY_END
        + _SEP
        + r"\\?[\"'`]?(?P<s>"
        + _B64_40
        + r")",
        ["secret"],
        fold=True,
        check=_mixed_base64,
    ),
    _p(
        "aws_secret_access_key",
        "AWS Secret Access Key",
        # Next to an access key id: "AKIA... wJalr..." / CSV / a labelled line or two below.
        _AWS_ID + r"[^A-Za-z0-9/+]{1,12}(?:[A-Za-z_ .-]{1,60}[^A-Za-z0-9/+]{1,12})?(?P<s>" + _B64_40 + r")",
        ["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        check=_mixed_base64,
    ),
    _p("google_api_key", "Google API Key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35,}", ["AIza"]),
    _p(
        "azure_key",
        "Azure Storage Account access key",
        r"(?<![a-z0-9])(?:accountkey|sharedaccesskey|sig)=(?P<s>[A-Za-z0-9+/%]{20,}={0,2})",
        ["accountkey", "sharedaccess", "sig="],
        fold=True,
    ),
    _p(
        "azure_key",
        "Azure Key",
        # A 32-hex or 88-base64 key assigned to a name that says Azure or subscription key.
        r"[\w.-]*(?:azure|subscription[_-]?key|apim)[\w.-]*"
        + _KEY_END
        + _SEP
        + r"\\?[\"'`]?(?P<s>(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])|[A-Za-z0-9+/]{86}==|"
        r"[A-Za-z0-9]{84}(?![A-Za-z0-9]))",
        ["azure", "subscription", "apim"],
        fold=True,
    ),
    _p(
        "slack_token",
        "Slack Token",
        r"(?<![A-Za-z0-9])(?:xoxe\.)?xox[abposre]-[A-Za-z0-9-]{10,}"
        r"|(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{16,}",
        ["xox", "hooks.slack.com"],
    ),
    _p("huggingface_token", "Hugging Face Token", r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{34,}", ["hf_"]),
    _p(
        "github_token",
        "GitHub Token",
        r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9_]{30,}|github_pat_[A-Za-z0-9_]{22,})",
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    ),
    _p(
        "gitlab_token",
        "GitLab Token",
        rf"(?<![A-Za-z0-9])(?:(?:{'|'.join(_GITLAB_PREFIXES)})-[A-Za-z0-9_-]{{20,}}|GR1348941[A-Za-z0-9_-]{{20,}})",
        [*(f"{p}-" for p in _GITLAB_PREFIXES), "GR1348941"],
    ),
    _p(
        "jwt",
        "JSON Web Token",
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}=*\.[A-Za-z0-9_-]{5,}=*\.[A-Za-z0-9_-]*=*",
        ["eyJ"],
    ),
    _p("pypi_token", "PyPI Token", r"pypi-AgE[A-Za-z0-9_-]{50,}", ["pypi-"]),
    _p("npm_token", "NPM tokens", r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36,}", ["npm_"]),
    _p("sendgrid_key", "SendGrid API Key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", ["SG."]),
    _p(
        "bearer_token",
        "Bearer Token",
        r"(?:\bbearer[ \t]+|\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:basic|token|digest)[ \t]+)"
        r"(?P<s>[\w.~+/=-]{16,})",
        ["bearer", "authorization"],
        fold=True,
        check=_has_digit,
    ),
    _p(
        "url_credentials",
        "Basic Auth Credentials",
        r"(?<=://)[^\s/:@\"'<>]*:(?P<s>[^\s/@\"'<>]+)(?=@)",
        ["://"],
    ),
    _assignment(
        _ASSIGNED_NAMES + _KEY_END + _SEP + r"(?:" + _QUOTED_VALUE + r")",
        check=_assigned_value,
        needs=("=", ":"),
    ),
    _assignment(
        _ASSIGNED_NAMES + _KEY_END + r"[ \t]*(?:=>|:=|=)[ \t]*" + _UNQUOTED_VALUE,
        check=_unquoted_value,
        needs=("=",),
    ),
    _assignment(
        # A command-line flag and its value: --password hunter2, --api-key "...".
        r"(?<![\w-])--[a-z0-9-]*"
        + _ASSIGNED_NAMES
        + r"[ \t]+(?!-)(?:"
        + _QUOTED_VALUE
        + r"|"
        + _UNQUOTED_VALUE
        + r")",
        check=_unquoted_value,
        needs=("--",),
    ),
    _assignment(
        _ASSIGNED_NAMES + _KEY_END + r"[ \t]*:[ \t]*" + _UNQUOTED_COLON_VALUE,
        check=_prose_colon_value,
        needs=(":",),
    ),
)


def _hint_index(
    patterns: tuple[CredentialPattern, ...], fold: bool
) -> tuple[re.Pattern[str], dict[str, frozenset[int]]]:
    """One regex finding every hint at once, and which patterns each found hint enables.

    A hint inside a longer one (``key`` in ``accountkey``) is found as the longer one, so a
    found hint enables the patterns of every hint it contains.
    """
    hints = {h for p in patterns if p.fold == fold for h in p.hints}
    enables = {
        big: frozenset(i for i, p in enumerate(patterns) if p.fold == fold and any(h in big for h in p.hints))
        for big in hints
    }
    rx = re.compile("|".join(re.escape(h) for h in sorted(hints, key=len, reverse=True)))
    return rx, enables


_CASED_HINTS, _CASED_ENABLES = _hint_index(PATTERNS, fold=False)
_FOLDED_HINTS, _FOLDED_ENABLES = _hint_index(PATTERNS, fold=True)
_SECRET_GROUPS = tuple(p.secret_groups for p in PATTERNS)
#: Every format without ``=``, ``:``, ``--`` or a PEM header is at least this many non-space characters.
MIN_RUN = 15
_LONG_RUN = re.compile(rf"\S{{{MIN_RUN}}}")
_SPACELESS_RUN = re.compile(rf"[^ ]{{{MIN_RUN}}}")


def _candidates(text: str, lowered: str) -> list[int]:
    """Indices of the :data:`PATTERNS` whose hints occur in the text (in order)."""
    found: set[int] = set()
    for hint in set(_CASED_HINTS.findall(text)):
        found |= _CASED_ENABLES[hint]
    for hint in set(_FOLDED_HINTS.findall(lowered)):
        found |= _FOLDED_ENABLES[hint]
    return sorted(found)


def has_long_run(text: str) -> bool:
    """True when ``text`` has a run of :data:`MIN_RUN` or more non-space characters."""
    # "[^ ]" finds candidates several times faster than "\S"; "\S" then confirms one.
    return _SPACELESS_RUN.search(text) is not None and _LONG_RUN.search(text) is not None


def _raw_spans(text: str, long_run: bool | None) -> list[tuple[int, int, int]]:
    """``(start, end, pattern index)`` for every accepted match of :data:`PATTERNS`."""
    # Every format has an assignment sign, "://", a "--flag" or a PEM header, or is a run of
    # 15+ non-space characters: most prose fails all of these at C speed and costs nothing more.
    signs = "=" in text or ":" in text or "--" in text or "PRIVATE KEY" in text
    if not signs and not (has_long_run(text) if long_run is None else long_run):
        return []
    lowered = text.lower()
    candidates = _candidates(text, lowered)
    if not candidates:
        return []
    # str.lower() can change the length (e.g. "İ"): then offsets would not line up.
    same_length = len(lowered) == len(text)
    out: list[tuple[int, int, int]] = []
    for i in candidates:
        pattern = PATTERNS[i]
        if pattern.needs and not any(n in text for n in pattern.needs):
            continue
        regex, haystack = pattern.regex, text
        if pattern.fold:
            if same_length:
                haystack = lowered
            elif pattern.any_case is not None:
                regex = pattern.any_case
        groups = _SECRET_GROUPS[i]
        for m in regex.finditer(haystack):
            start, end = m.span()
            for g in groups:
                if m.start(g) >= 0:
                    start, end = m.span(g)
                    break
            value = text[start:end]
            if m.lastgroup == "s5":
                # An unquoted value keeps a closing bracket or full stop after it in the text.
                trimmed = value.rstrip(_UNQUOTED_TAIL)
                end -= len(value) - len(trimmed)
                value = trimmed
            if end <= start or (pattern.check is not None and not pattern.check(value)):
                continue
            out.append((start, end, i))
    return out


def find_credentials(text: str, *, long_run: bool | None = None) -> list[CredentialSpan]:
    """Credential spans in ``text``, merged where they overlap, sorted by start.

    A merged span is named after its longest part (on a tie, the earlier pattern in
    :data:`PATTERNS`, so ``password = "ghp_..."`` is a GitHub token). ``long_run``: the
    caller's :func:`has_long_run` of ``text`` when it already computed it (a scanner does).
    """
    raw = _raw_spans(text, long_run)
    if not raw:
        return []
    raw.sort(key=lambda r: (r[0], -r[1], r[2]))
    merged: list[list[int]] = []  # [start, end, pattern index, length of the naming part]
    for start, end, i in raw:
        if merged and start < merged[-1][1]:
            cur = merged[-1]
            length = end - start
            if length > cur[3] or (length == cur[3] and i < cur[2]):
                cur[2], cur[3] = i, length
            cur[1] = max(cur[1], end)
        else:
            merged.append([start, end, i, end - start])
    return [CredentialSpan(PATTERNS[i].kind, PATTERNS[i].label, s, e) for s, e, i, _ in merged]


def redact_credentials(text: str) -> tuple[str, list[str]]:
    """``text`` with each credential span replaced by ``[REDACTED:<kind>]``; and the kinds found."""
    spans = find_credentials(text)
    if not spans:
        return text, []
    out: list[str] = []
    pos = 0
    for span in spans:
        out.append(text[pos : span.start])
        out.append(f"[REDACTED:{span.kind}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out), [s.kind for s in spans]


# -- key names ----------------------------------------------------------------------------------

#: Key names (normalised: lower case, words joined by ``_``) whose value is a credential,
#: whatever it looks like. Matched against the *whole* name.
CREDENTIAL_KEY_NAMES: frozenset[str] = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "pass_phrase", "pgpassword", "secret", "token",
        "api_key", "apikey", "access_key", "secret_key", "secret_access_key",
        "client_secret", "auth_token", "access_token", "refresh_token", "id_token", "session_token",
        "security_token", "bearer_token", "api_token", "oauth_token", "private_token", "private_key",
        "authorization", "proxy_authorization", "cookie", "set_cookie", "credential", "credentials",
        "hf_token", "hugging_face_hub_token", "huggingface_hub_token", "huggingface_token",
        "github_token", "gh_token", "gitlab_token", "slack_token", "bot_token", "npm_token",
        "pypi_token", "wandb_api_key", "connection_string", "conn_str", "account_key",
        "shared_access_key", "sas_token", "signing_secret", "webhook_secret", "jwt_secret",
    }
)  # fmt: skip

#: Names that also make a credential key as the *last words* of a longer name
#: (``OPENAI_API_KEY``, ``db_password``, ``X-Auth-Token``). ``token``, ``key`` and ``secret``
#: alone are not among them: ``eos_token``, ``sort_key`` and ``is_secret`` hold no credential.
CREDENTIAL_KEY_SUFFIXES: tuple[str, ...] = (
    "password", "passwd", "passphrase", "api_key", "apikey", "access_key", "secret_key",
    "secret_access_key", "client_secret", "private_key", "auth_token", "access_token",
    "refresh_token", "session_token", "security_token", "bearer_token", "api_token", "oauth_token",
    "private_token", "authorization", "signing_secret", "webhook_secret", "account_key",
    "connection_string",
)  # fmt: skip

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def normalise_key(key: str) -> str:
    """``"X-Api-Key"``, ``"apiKey"``, ``"API_KEY"`` -> ``"x_api_key"``, ``"api_key"``, ``"api_key"``."""
    return "_".join(w.lower() for w in _NON_ALNUM.split(_CAMEL.sub("_", key)) if w)


def is_credential_key(key: str) -> bool:
    """True when a mapping key names a credential: its whole normalised name is one of
    :data:`CREDENTIAL_KEY_NAMES`, or ends with ``_`` + one of :data:`CREDENTIAL_KEY_SUFFIXES`.

    Never by substring: ``token_f1``, ``max_new_tokens``, ``tokenizer``, ``num_tokens`` and
    ``signing_key_path`` are not credential keys. Keys with spaces are labels (``"AWS Access
    Key": 3`` in a scan summary), judged by their values only.
    """
    if any(ch.isspace() for ch in key):
        return False
    name = normalise_key(key)
    if name in CREDENTIAL_KEY_NAMES:
        return True
    return any(name.endswith("_" + suffix) for suffix in CREDENTIAL_KEY_SUFFIXES)


__all__ = [
    "CREDENTIAL_KEY_NAMES",
    "CREDENTIAL_KEY_SUFFIXES",
    "PATTERNS",
    "CredentialPattern",
    "CredentialSpan",
    "MIN_RUN",
    "find_credentials",
    "has_long_run",
    "is_credential_key",
    "normalise_key",
    "redact_credentials",
]
