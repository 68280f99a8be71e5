import logging
import random
import secrets
import string

import pytest

from agent.redact import REDACTED, RedactingFilter, Redactor, StreamRedactor, is_secret_name, scrub_env


def alnum(n: int) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=n))


def upper(n: int) -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=n))


def pem() -> str:
    body = "\n".join(alnum(64) for _ in range(4))
    kind = "RSA " + "PRIVATE KEY"  # assembled at run time: the repository holds no key-shaped text
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


# Each case: (secret, how it appears in text); keys are generated at run time.
TOKENS = {
    "hf": lambda: "hf_" + alnum(34),
    "openai": lambda: "sk-proj-" + alnum(48),
    "anthropic": lambda: "sk-ant-api03-" + alnum(40),
    "github classic": lambda: random.choice("pousr").join(["gh", "_"]) + alnum(36),
    "github fine-grained": lambda: "github_pat_" + alnum(22) + "_" + alnum(59),
    "aws key id": lambda: "AKIA" + upper(16),
    "aws session key id": lambda: "ASIA" + upper(16),
    "slack": lambda: f"xox{random.choice('bap')}-{secrets.randbelow(10**12)}-{alnum(24)}",
    "jwt": lambda: f"eyJ{alnum(20)}.eyJ{alnum(30)}.{alnum(43)}",
    "gitlab": lambda: "glpat-" + alnum(20),
    "slack refresh": lambda: "xoxe-1-" + alnum(40),
    "google api key": lambda: "AIza" + alnum(35),
    "stripe": lambda: "sk_live_" + alnum(30),
    "npm": lambda: "npm_" + alnum(36),
    "groq": lambda: "gsk_" + alnum(52),
}


@pytest.mark.parametrize("kind", list(TOKENS))
def test_token_shapes_are_redacted(kind: str) -> None:
    token = TOKENS[kind]()
    text = f"using {token} for the request\nnext line"

    out = Redactor().redact(text)

    assert out == f"using {REDACTED} for the request\nnext line"


def test_bearer_keeps_the_scheme() -> None:
    token = alnum(40)

    out = Redactor().redact(f"Authorization: Bearer {token}")

    assert out == f"Authorization: Bearer {REDACTED}"


def test_url_credentials_keep_the_user() -> None:
    password = alnum(20)

    out = Redactor().redact(f"remote: https://x-access-token:{password}@example.invalid/o/r.git")

    assert out == f"remote: https://x-access-token:{REDACTED}@example.invalid/o/r.git"


def test_pem_private_key_blocks() -> None:
    key = pem()

    out = Redactor().redact(f"key:\n{key}\ndone")

    assert out == f"key:\n{REDACTED}\ndone"


def test_cut_off_pem_block_is_still_redacted() -> None:
    head = pem().split("-----END")[0]

    out = Redactor().redact(head)

    assert out == REDACTED


def test_json_escaped_pem_block() -> None:
    key = pem().replace("\n", "\\n")

    out = Redactor().redact(f'{{"private_key": "{key}"}}')

    assert out == f'{{"private_key": "{REDACTED}"}}'


@pytest.mark.parametrize(
    "template",
    [
        "HF_TOKEN={}",
        "export OPENAI_API_KEY={}",
        "WEBHOOK_SECRET: {}",
        "DB_PASSWORD = '{}'",
        '"AWS_SECRET_ACCESS_KEY": "{}"',
        "GITHUB_APP_PRIVATE_KEY={}",
    ],
)
def test_secret_looking_assignments_keep_the_name(template: str) -> None:
    value = secrets.token_urlsafe(18).replace("-", "x")

    out = Redactor().redact(template.format(value))

    assert value not in out
    assert out == template.format(REDACTED)


def test_assignment_inside_a_json_string_stops_at_an_escape() -> None:
    value = alnum(24)

    out = Redactor().redact(f'{{"content": "HF_TOKEN={value}\\nmodel = load()\\n"}}')

    assert out == f'{{"content": "HF_TOKEN={REDACTED}\\nmodel = load()\\n"}}'


@pytest.mark.parametrize(
    "text",
    [
        'HF_TOKEN = os.environ["HF_TOKEN"]',
        'GITHUB_TOKEN = os.getenv("GITHUB_TOKEN")',
        "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        "headers: {Authorization: Bearer ${HF_TOKEN}}",
        "tokenizer.pad_token = tokenizer.eos_token",
        "max_new_tokens: 512",
        "HF_TOKEN=short",
        "HF_TOKEN_PATH=/home/user/.cache/token",
        f"HF_TOKEN: {REDACTED}",
        "pip install scikit-learn transformers",
    ],
)
def test_ordinary_text_and_references_are_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_env_values_are_redacted_wherever_they_appear() -> None:
    password = "pw-" + alnum(20)
    wandb = alnum(40)
    env = {"DB_PASSWORD": password, "WANDB_API_KEY": wandb, "HOME": "/home/someone-long", "X_TOKEN": "short"}

    redactor = Redactor.from_env(env)

    assert redactor.redact(f"connecting with {password} and key={wandb}") == (
        f"connecting with {REDACTED} and key={REDACTED}"
    )
    assert redactor.redact("home is /home/someone-long, short stays") == "home is /home/someone-long, short stays"


def test_added_values_are_redacted_and_short_ones_ignored() -> None:
    redactor = Redactor()
    value = alnum(30)
    redactor.add(value)
    redactor.add("abc")

    assert redactor.redact(f"token {value}; abc") == f"token {REDACTED}; abc"


def test_redaction_is_idempotent() -> None:
    text = f"HF_TOKEN={TOKENS['hf']()} and Bearer {alnum(30)} and {pem()}"
    once = Redactor().redact(text)

    assert Redactor().redact(once) == once


def test_large_output_with_a_secret_at_the_end() -> None:
    token = TOKENS["github classic"]()
    text = "epoch 1 loss 0.25 lr=3e-4 MODEL_NAME=distilbert\n" * 40_000 + token

    out = Redactor().redact(text)

    assert out.endswith(REDACTED) and token not in out
    assert len(out) == len(text) - len(token) + len(REDACTED)


def test_redact_obj_recurses_and_keeps_other_values() -> None:
    token = TOKENS["hf"]()
    obj = {"a": [f"x {token}", 3, None, (token, 1.5)], token: {"b": True}}

    out = Redactor().redact_obj(obj)

    assert out == {"a": [f"x {REDACTED}", 3, None, (REDACTED, 1.5)], REDACTED: {"b": True}}
    assert obj["a"][0] == f"x {token}"  # the input is not modified


@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GITHUB_APP_PRIVATE_KEY",
        "WEBHOOK_SECRET",
        "DB_PASSWORD",
        "API_KEY",
        "hf_token",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "HF_HOME", "TOKENIZERS_PARALLELISM", "HF_TOKEN_PATH", "KEYBOARD"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_scrub_env_drops_secrets_and_keeps_the_rest() -> None:
    env = {"PATH": "/usr/bin", "HF_TOKEN": "hf_x", "OPENAI_API_KEY": "sk-x", "HF_HOME": "/cache", "LANG": "C"}

    assert scrub_env(env) == {"PATH": "/usr/bin", "HF_HOME": "/cache", "LANG": "C"}


@pytest.mark.parametrize(
    "template",
    [
        "Authorization: Basic {}",  # git's extraheader (actions/checkout), base64 of x-access-token:ghs_...
        "http.https://github.com/.extraheader AUTHORIZATION: basic {}",
        "authorization: token {}",
        "x-api-key: {}",
        "password={}",
        "  password: {}",
        "api_key = '{}'",
        "aws_secret_access_key = {}",
        "https://huggingface.co/api/x?access_token={}&b=1",
        "machine github.com login me password {}",
        "https://hooks.slack.com/services/{}",
    ],
)
def test_secrets_in_context_keep_the_context(template: str) -> None:
    value = alnum(16) + "7" + alnum(16)

    out = Redactor().redact(template.format(value))

    assert out == template.format(REDACTED)


@pytest.mark.parametrize(
    "text",
    [
        "risk-adjusted-performance-metrics-computation-module",
        "mask-rcnn-resnet50-fpn-coco-weights-v2",
        "commit 3f2a9c8e1b7d4f6a0c5e2b9d8a7f6e5d4c3b2a19",
        "sha256:" + "ab" * 32,
        "generate(max_new_tokens=256, pad_token_id=tokenizer.eos_token_id)",
        '{"pad_token": "<|endoftext|>", "unk_token": "[UNK]", "eos_token": "</s>"}',
        "password: ${DB_PASSWORD}",
        "Authorization: Bearer ${HF_TOKEN}",
        "authorization: required",
        '"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5Erk"',
    ],
)
def test_ml_output_is_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_url_credentials_inside_json_do_not_break_it() -> None:
    text = '{"a":"http://x:y","b":"z@w"}'

    assert Redactor().redact(text) == text


@pytest.mark.parametrize("name", ["STRIPE_KEY", "AWS_ACCESS_KEY_ID", "GH_PAT", "SMTP_PASS", "GCP_CREDENTIALS"])
def test_more_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "MYAPP_APIKEY",
        "OPENAI_APIKEY",
        "SENTRY_DSN",
        "HF_TOKEN_WRITE",
        "GITHUB_TOKEN_RO",
        "SECRET_KEY_BASE",
        "GHTOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ],
)
def test_names_with_a_secret_word_anywhere_are_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "PASSWORD_STORE_DIR",
        "AWS_SHARED_CREDENTIALS_FILE",
        "SSH_AUTH_SOCK",
        "GIT_ASKPASS",
        "MAX_TOKENS",
        "SECRETS_MANAGER_ARN",
    ],
)
def test_names_that_point_at_or_describe_a_secret_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "template",
    [
        "STRIPE_KEY={}",
        "export MYAPP_APIKEY={}",
        "SENTRY_DSN=https://{}@o1.ingest.sentry.io/4",
        "HF_TOKEN_WRITE={}",
        '"GITHUB_TOKEN_RO": "{}"',
        "OPENAI_APIKEY: {}",
        "SMTP_PASS='{}'",
    ],
)
def test_dotenv_lines_under_names_without_a_known_suffix_are_redacted(template: str) -> None:
    value = alnum(16) + "7" + alnum(16)

    out = Redactor().redact(template.format(value))

    assert value not in out
    assert REDACTED in out
    assert out.startswith(template[: template.index("{}")].split("https")[0])  # the name is kept


@pytest.mark.parametrize(
    "text",
    [
        "CACHE_KEY=model_cache_name",
        'PRIMARY_KEY = "user_id"',
        "HF_TOKEN_PATH=/home/user/.cache/hf/token2",
        "TOKEN_URL=https://auth.example/oauth2/token",
        "MAX_TOKENS=4096000",
        "SORT_KEY: created_at",
    ],
)
def test_keys_that_are_not_secrets_stay(text: str) -> None:
    assert Redactor().redact(text) == text


def test_scrub_env_keeps_credential_paths_and_drops_token_values() -> None:
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
        "KUBECONFIG": "/home/u/.kube/config",
        "SSH_AUTH_SOCK": "/tmp/ssh-x/agent.1",
        "GIT_CONFIG_VALUE_0": "AUTHORIZATION: basic " + alnum(40),
        "SOME_SETTING": TOKENS["hf"](),
    }

    assert scrub_env(env) == {k: env[k] for k in ("GOOGLE_APPLICATION_CREDENTIALS", "KUBECONFIG", "SSH_AUTH_SOCK")}


def stream(redactor: Redactor, text: str, size: int) -> str:
    s = StreamRedactor(redactor)
    return "".join(s.feed(text[i : i + size]) for i in range(0, len(text), size)) + s.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_a_secret_split_across_stream_chunks_is_redacted(size: int) -> None:
    password = "pass word " + alnum(12)  # a known value with spaces in it
    redactor = Redactor([password])
    text = (
        f"Use {TOKENS['hf']()} now.\nHF_TOKEN = {alnum(24)}\nAuthorization: Bearer {alnum(30)}\n"
        f"{pem()}\nthe password is {password}, done."
    )

    assert stream(redactor, text, size) == redactor.redact(text)


def test_stream_output_is_released_word_by_word() -> None:
    s = StreamRedactor(Redactor())

    assert s.feed("Training the model") == "Training the"
    assert s.feed(" now") == " model"
    assert s.flush() == " now"


def test_a_long_run_without_spaces_is_released_with_a_tail_held() -> None:
    s = StreamRedactor(Redactor())

    out = s.feed("a" * 10_000)

    assert out == "a" * (10_000 - StreamRedactor.TAIL)
    assert s.flush() == "a" * StreamRedactor.TAIL


def test_a_value_learnt_late_is_redacted_from_installed_log_filters() -> None:
    from agent.redact import redact_in_logs

    key = alnum(30)  # e.g. from `llm.api_key_env: MY_LLM`, a name nothing recognises
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter(Redactor()))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redact_in_logs(key)
    finally:
        root.removeHandler(handler)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "retrying: key %s rejected", (key,), None)
    handler.filters[0].filter(record)  # type: ignore[union-attr]
    assert record.getMessage() == f"retrying: key {REDACTED} rejected"


def test_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    token = TOKENS["github classic"]()
    record = logging.LogRecord("agent.x", logging.ERROR, __file__, 1, "call failed with %s", (token,), None)
    try:
        raise ValueError(f"bad key {token}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()

    RedactingFilter(Redactor()).filter(record)
    text = logging.Formatter().format(record)

    assert token not in text
    assert "call failed with [REDACTED]" in text and "ValueError: bad key [REDACTED]" in text
