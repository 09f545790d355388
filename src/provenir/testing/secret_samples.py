"""A labelled corpus of credentials in context, shared by the secret-scanner tests and ``bench/scan.py``.

::

    from provenir.testing.secret_samples import SECRET_TYPES, labelled_samples, negative_samples

    for sample in labelled_samples(per_type=50, seed=0):
        sample.type, sample.secret      # "github", "ghp_..." ; sample.text holds it at sample.start

Each secret is random but has its real format (prefix, alphabet, length, checksum-free), and is
embedded in a line of prose, code, configuration, a log or a URL, the way credentials end up in
chat transcripts and scraped code. ``spans`` lists every secret of the text (an AWS secret key
sample also carries its access key id), so a test can check that everything *else* is kept.
Negatives are look-alikes a scanner must leave alone: hashes, UUIDs, metric and config names,
code that reads a credential, tokenizer special tokens.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

_ALNUM = string.ascii_letters + string.digits
_B64 = _ALNUM + "+/"
_B64URL = _ALNUM + "-_"
_HEX = "0123456789abcdef"
_UPPER32 = string.ascii_uppercase + "234567"
_PASSWORD = _ALNUM + "!@#%^*-_+=?~"

#: Rows of the recall table, in order.
SECRET_TYPES: tuple[str, ...] = (
    "anthropic",
    "openai",
    "aws_access_key_id",
    "aws_secret_access_key",
    "google_api_key",
    "azure",
    "slack",
    "stripe",
    "huggingface",
    "github",
    "gitlab",
    "jwt",
    "private_key",
    "password_assignment",
)


@dataclass(frozen=True)
class LabelledSecret:
    """``text[start:end]`` is a secret of ``type``; ``spans`` are all secrets in ``text``."""

    type: str
    text: str
    start: int
    end: int
    spans: tuple[tuple[int, int], ...]

    @property
    def secret(self) -> str:
        """The secret itself."""
        return self.text[self.start : self.end]


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url_json(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _anthropic(rng: random.Random) -> str:
    kind = rng.choice(["api03", "api03", "admin01"])
    return f"sk-ant-{kind}-{_r(rng, _B64URL, 93)}AA"


def _openai(rng: random.Random) -> str:
    form = rng.choice(["legacy", "proj", "svcacct", "admin"])
    if form == "legacy":
        return f"sk-{_r(rng, _ALNUM, 20)}T3BlbkFJ{_r(rng, _ALNUM, 20)}"
    body = f"{_r(rng, _B64URL, rng.randint(56, 140))}T3BlbkFJ{_r(rng, _B64URL, 40)}"
    return f"sk-{form}-{body}"


def _aws_id(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _r(rng, _UPPER32, 16)


def _aws_secret(rng: random.Random) -> str:
    while True:
        value = _r(rng, _B64, 40)
        # Real keys have both cases and digits; a generated one without is not realistic.
        if (
            any(c.isupper() for c in value)
            and any(c.islower() for c in value)
            and any(c.isdigit() for c in value)
        ):
            return value


def _google(rng: random.Random) -> str:
    return "AIza" + _r(rng, _B64URL, 35)


def _slack(rng: random.Random) -> str:
    form = rng.choice(["bot", "user", "webhook"])
    if form == "bot":
        return f"xoxb-{_r(rng, string.digits, 12)}-{_r(rng, string.digits, 13)}-{_r(rng, _ALNUM, 24)}"
    if form == "user":
        parts = "-".join(_r(rng, string.digits, 12) for _ in range(3))
        return f"xoxp-{parts}-{_r(rng, _HEX, 32)}"
    return (
        f"https://hooks.slack.com/services/T{_r(rng, _UPPER32, 10)}/B{_r(rng, _UPPER32, 10)}/"
        f"{_r(rng, _ALNUM, 24)}"
    )


def _stripe(rng: random.Random) -> str:
    prefix = rng.choice(["sk_live_", "rk_live_", "sk_test_"])
    return prefix + _r(rng, _ALNUM, rng.choice([24, 99]))


def _huggingface(rng: random.Random) -> str:
    return "hf_" + _r(rng, string.ascii_letters, 34)


def _github(rng: random.Random) -> str:
    prefix = rng.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"])
    if prefix == "github_pat_":
        return f"github_pat_{_r(rng, _ALNUM, 22)}_{_r(rng, _ALNUM, 59)}"
    return prefix + _r(rng, _ALNUM, 36)


def _gitlab(rng: random.Random) -> str:
    return "glpat-" + _r(rng, _B64URL, 20)


def _jwt(rng: random.Random) -> str:
    header = _b64url_json({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    payload = _b64url_json(
        {
            "sub": _r(rng, string.digits, 10),
            "name": _r(rng, string.ascii_lowercase, 8),
            "iat": rng.randint(1, 2**31),
        }
    )
    return f"{header}.{payload}.{_r(rng, _B64URL, 43)}"


def _private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED ", "DSA "])
    lines = [_r(rng, _B64, 64) for _ in range(rng.randint(3, 12))] + [_r(rng, _B64, rng.randint(8, 63)) + "="]
    return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"\n-----END {kind}PRIVATE KEY-----"


def _password(rng: random.Random) -> str:
    # Starts with a letter and has a digit: how most generated passwords and tokens look.
    return (
        rng.choice(string.ascii_letters) + _r(rng, _PASSWORD, rng.randint(6, 22)) + rng.choice(string.digits)
    )


_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "aws_access_key_id": _aws_id,
    "aws_secret_access_key": _aws_secret,
    "google_api_key": _google,
    "slack": _slack,
    "stripe": _stripe,
    "huggingface": _huggingface,
    "github": _github,
    "gitlab": _gitlab,
    "jwt": _jwt,
    "private_key": _private_key,
    "password_assignment": _password,
}

# Contexts for a token with a recognisable format; {s} is the secret, {env} a fitting variable name.
_TOKEN_CONTEXTS = (
    "I accidentally pasted {s} into the chat, can you rotate it?",
    "The deploy failed because the key {s} was revoked.",
    'client = Client(api_key="{s}", timeout=30)',
    "export {env}={s}",
    "{env}={s}",
    "  token: {s}",
    '{{"key": "{s}", "region": "us-east-1"}}',
    "Use `{s}` for the staging project.",
    "2024-05-01T12:00:03Z ERROR auth failed for credential {s} (401)",
    "curl -H 'Authorization: Bearer {s}' https://api.example.com/v1/models",
    "https://api.example.com/v1/items?key={s}&page=2",
    "headers = {{'X-Api-Key': '{s}'}}",
    "Here it is: {s}. Thanks!",
    "Rotate the old one ({s}) before Friday.",
    "| prod | {s} | owner: platform |",
    "keys:\n  - {s}\n  - placeholder",
    "The value was '{s}', not the one in the vault.",
    '{{"credentials":{{"{env}":"{s}"}}}}',
)
_ENV = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "google_api_key": "GOOGLE_API_KEY",
    "slack": "SLACK_BOT_TOKEN",
    "stripe": "STRIPE_SECRET_KEY",
    "huggingface": "HF_TOKEN",
    "github": "GITHUB_TOKEN",
    "gitlab": "GITLAB_TOKEN",
    "jwt": "SESSION_JWT",
}
_AWS_SECRET_CONTEXTS = (
    "aws_secret_access_key = {s}",
    "AWS_SECRET_ACCESS_KEY={s}",
    'export AWS_SECRET_ACCESS_KEY="{s}"',
    '  "SecretAccessKey": "{s}",',
    "secret_access_key: {s}",
    "aws_secret_key = '{s}'",
    "[default]\naws_access_key_id = {id}\naws_secret_access_key = {s}",
    "{id},{s}",
    "Access key {id} and secret {s} were in the notebook.",
    "aws configure set aws_access_key_id {id}; aws configure set aws_secret_access_key {s}",
    "AccessKeyId: {id}\nSecretAccessKey: {s}",
    "creds = ('{id}', '{s}')",
)
_AZURE_CONTEXTS = (
    "DefaultEndpointsProtocol=https;AccountName=mystore;AccountKey={b88};EndpointSuffix=core.windows.net",
    "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey={b44}",
    "AZURE_OPENAI_API_KEY={hex}",
    "Ocp-Apim-Subscription-Key: {hex}",
    'azure_storage_key: "{b88}"',
    "AZURE_CLIENT_SECRET={azsecret}",
    "conn = 'AccountName=prod;AccountKey={b88}'",
)
_PEM_CONTEXTS = (
    "Here is the deploy key:\n{s}\nplease keep it safe",
    "{s}",
    'key = """{s}"""',
    "ssh setup:\n\n{s}\n\nthen run ssh-add.",
)
_ASSIGNMENT_CONTEXTS = (
    'password = "{s}"',
    "DB_PASSWORD={s}",
    "password: {s}",
    '{{"username": "admin", "password": "{s}"}}',
    "client_secret: '{s}'",
    'api_key = "{s}"',
    "auth_token={s}",
    "secret: {s}",
    'token = "{s}"',
    "passwd={s}",
    "pwd: {s}",
    "  apiKey: '{s}'",
    'const accessKey = "{s}";',
    "login with password={s} then",
    "SECRET_KEY = '{s}'",
    "mysql -u root --password {s} -h db.internal",
    "./deploy.sh --api-key '{s}' --region eu-west-1",
)


def _fill(
    template: str, fields: dict[str, str], primary: str
) -> tuple[str, int, int, tuple[tuple[int, int], ...]]:
    """Fill ``template``; return the text, the primary field's span and every field's span."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    primary_span = (0, 0)
    pos = 0
    i = 0
    while i < len(template):
        if template.startswith("{{", i) or template.startswith("}}", i):
            out.append(template[i])
            pos += 1
            i += 2
            continue
        if template[i] == "{":
            j = template.index("}", i)
            name = template[i + 1 : j]
            value = fields[name]
            out.append(value)
            if name != "env":
                spans.append((pos, pos + len(value)))
                if name == primary:
                    primary_span = spans[-1]
            pos += len(value)
            i = j + 1
            continue
        out.append(template[i])
        pos += 1
        i += 1
    return "".join(out), primary_span[0], primary_span[1], tuple(spans)


def _sample(secret_type: str, rng: random.Random) -> LabelledSecret:
    if secret_type == "aws_secret_access_key":
        template = rng.choice(_AWS_SECRET_CONTEXTS)
        fields = {"s": _aws_secret(rng), "id": _aws_id(rng)}
        primary = "s"
    elif secret_type == "azure":
        template = rng.choice(_AZURE_CONTEXTS)
        fields = {
            "b88": _r(rng, _B64, 86) + "==",
            "b44": _r(rng, _B64, 43) + "=",
            "hex": _r(rng, _HEX, 32),
            "azsecret": _r(rng, _ALNUM, 3) + "8Q~" + _r(rng, _ALNUM + "~._-", 33) + _r(rng, _ALNUM, 1),
        }
        primary = next(name for name in fields if "{" + name + "}" in template)
    elif secret_type == "private_key":
        template = rng.choice(_PEM_CONTEXTS)
        fields, primary = {"s": _private_key(rng)}, "s"
    elif secret_type == "password_assignment":
        template = rng.choice(_ASSIGNMENT_CONTEXTS)
        fields, primary = {"s": _password(rng)}, "s"
    else:
        template = rng.choice(_TOKEN_CONTEXTS)
        fields, primary = {"s": _GENERATORS[secret_type](rng), "env": _ENV[secret_type]}, "s"
    text, start, end, spans = _fill(template, fields, primary)
    return LabelledSecret(secret_type, text, start, end, spans)


def labelled_samples(per_type: int = 100, *, seed: int = 0) -> list[LabelledSecret]:
    """``per_type`` samples of every type in :data:`SECRET_TYPES`, deterministic for ``seed``."""
    rng = random.Random(seed)
    return [_sample(t, rng) for t in SECRET_TYPES for _ in range(per_type)]


#: Text that looks a little like a credential and is not one.
NEGATIVES: tuple[str, ...] = (
    "The tokenizer splits text into tokens; max_new_tokens = 256 bounds the reply.",
    "token_f1: 0.734, exact_match: 0.512, rouge_l: 0.61",
    'metrics = {"token_f1": 0.41, "num_tokens": 1024, "mean_token_accuracy": 0.8}',
    "dataset sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed the loader",
    'run_id = "550e8400-e29b-41d4-a716-446655440000"',
    'password = os.environ["DB_PASSWORD"]',
    "api_key = None",
    "token = tokenizer.eos_token",
    'pad_token = "<pad>"',
    'eos_token: "</s>"',
    "Use a strong password: at least twelve characters, never reused.",
    "Our secret: good data beats a bigger model.",
    "AKIA is the prefix of long-term AWS access key ids; ASIA marks temporary ones.",
    "GitHub personal access tokens start with ghp_ and Slack bot tokens with xoxb-.",
    "A JWT starts with eyJ because base64 of a JSON object begins that way.",
    "scikit-learn (sk-learn) estimators follow fit/predict.",
    "signing_key_path: keys/manifest.pem",
    "api_key_env: ANTHROPIC_API_KEY",
    '"model_name_or_path": "provenir/tiny-llama"',
    "https://example.com/docs/page?section=auth&lang=en",
    "The secret_key_base rotation is documented in the runbook.",
    "password_file: /run/secrets/db_password",
    "Set the token via the HF_TOKEN environment variable, never in code.",
    "learning_rate: 0.0002, warmup_steps: 10, max_grad_norm: 1.0",
    "tokens_per_second = total_tokens / elapsed",
    "def get_password(user):\n    return vault.read(user)",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "hf_hub_download(repo_id='provenir/tiny-llama', filename='config.json')",
    "The access_key_id field names the key; the secret is stored in the vault.",
    "python train.py --max-new-tokens 256 --tokenizer gpt2",
    "docker login --password-stdin < token.txt; gh auth login --token-file ~/.gh",
    "deploy --api-key $DEPLOY_KEY --token ${GITHUB_TOKEN}",
    "self.token = token\nself.api_key = api_key\npassword = new_password",
    "def login(username: str, password: str) -> bool:",
    "const body = { password: password, token: authToken };",
    "api_key: str | None = None",
)


def negative_samples() -> list[str]:
    """:data:`NEGATIVES` (fixed look-alikes; a scanner should find nothing in any of them)."""
    return list(NEGATIVES)


__all__ = ["NEGATIVES", "SECRET_TYPES", "LabelledSecret", "labelled_samples", "negative_samples"]
