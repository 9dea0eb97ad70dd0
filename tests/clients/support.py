"""Helpers shared by the client tests: schema checks against OpenRouter's published shapes, raw
HTTP for what no SDK covers, raw SSE reading, and runtime detection of unbuilt endpoints."""

import json
import secrets
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

# The gateway's test config (conftest.py) and the tests share these.
# Prices in USD per million tokens, as the config states them; tests compute costs from them.
PRICE_ALPHA = {"prompt": 0.5, "completion": 1.5}
PRICE_BETA = {"prompt": 1.0, "completion": 3.0}
PRICE_RECORDER = {"prompt": 2.0, "completion": 4.0}
# What the recording upstream answers: JSON, so `response_format` requests can parse it.
RECORDER_REPLY = {"city": "Paris", "country": "France"}
RECORDER_USAGE = {"prompt_tokens": 11, "completion_tokens": 7}
RECORDER_MODEL = "recorder-1"
UPSTREAM_SECRET = "sk-upstream-" + secrets.token_hex(8)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openrouter-schemas.json"

# Every error body on the OpenAI front door has these keys (DESIGN §3).
OPENAI_ERROR_KEYS = {"message", "type", "code", "param"}


@lru_cache(maxsize=None)
def _fixture():
    return json.loads(FIXTURE.read_text())


@lru_cache(maxsize=None)
def validator(root: str) -> Draft202012Validator:
    fx = _fixture()
    schema = {"$schema": fx["$schema"], "$defs": fx["$defs"], **fx["roots"][root]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(root: str, instance) -> list[tuple[str, str]]:
    """(JSON path, message) of every way `instance` breaks OpenRouter's schema `root`."""
    return sorted((e.json_path, e.message) for e in validator(root).iter_errors(instance))


def assert_conforms(root: str, instance, known_gaps=()):
    """Fails on every schema error not named in `known_gaps`: (json_path_prefix, predicate)
    pairs, each documented where it is declared and tracked by a strict xfail test."""
    errors = [(p, m) for p, m in schema_errors(root, instance)
              if not any(p.startswith(prefix) and pred(p, m) for prefix, pred in known_gaps)]
    assert not errors, f"{root} schema violations:\n" + "\n".join(f"  {p}: {m[:300]}" for p, m in errors)


def assert_openai_error(body: dict, status: int, kind: str | None = None, code: str | None = None):
    """`body` is a whole error response: {"error": {message, type, code, param, metadata?}}."""
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an OpenAI error body: {body!r}"
    error = body["error"]
    assert OPENAI_ERROR_KEYS <= set(error), f"error lacks {OPENAI_ERROR_KEYS - set(error)}: {error!r}"
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["code"] is None or isinstance(error["code"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error
    if "metadata" in error:
        assert isinstance(error["metadata"], dict), error
    if kind is not None:
        assert error["type"] == kind, (status, error)
    if code is not None:
        assert error["code"] == code, (status, error)
    return error


def http(method: str, url: str, key: str | None = None, body=None, headers=None, timeout=30):
    """(status, headers, parsed JSON or text) without raising on 4xx/5xx."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if key is not None:
        req.add_header("authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, hdrs, json.loads(text)
    except ValueError:
        return status, hdrs, text


def is_unknown_endpoint(status: int, body) -> bool:
    """The gateway's answer for a path it does not serve: 404 "no such endpoint: METHOD PATH"
    (not a 404 for an unknown model or an unknown generation id)."""
    if status != 404:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", "")).startswith("no such endpoint")
    return True


def describe(status: int, body) -> str:
    """A gateway answer in one short line, for skip reasons."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return f"answers {status} {error['message']!r}"
    return f"answers {status} {str(body)[:120]!r}"


def skip_unless_served(gateway, method: str, path: str, key: str | None = None, body=None):
    """Skips the test, with the gateway's answer as the reason, while `path` is not served."""
    status, _, answer = http(method, gateway.url(path), key=key or gateway.key, body=body)
    if is_unknown_endpoint(status, answer):
        pytest.skip(f"{method} {path} is not implemented yet: {describe(status, answer)}")
    return status, answer


def sse_events(lines) -> list:
    """The JSON `data:` payloads of an SSE body, in order; `[DONE]` is returned as the string."""
    events = []
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode()
        line = line.rstrip("\r\n")
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def raw_stream(client, **params) -> tuple[dict, list]:
    """(response headers, SSE payloads) of a streamed chat completion, read through the SDK's
    own transport but without its parsing, so what is checked is exactly the wire."""
    with client.chat.completions.with_streaming_response.create(stream=True, **params) as resp:
        assert resp.status_code == 200, resp.status_code
        assert resp.headers["content-type"].startswith("text/event-stream"), resp.headers
        return dict(resp.headers), sse_events(resp.iter_lines())


def user(text: str) -> list:
    return [{"role": "user", "content": text}]


def cost_of(usage, price: dict) -> float:
    """USD for `usage` at `price` (USD per million tokens)."""
    return (usage.prompt_tokens * price["prompt"] + usage.completion_tokens * price["completion"]) / 1e6


def mock_echo(text: str) -> str:
    """What the built-in mock answers by default: an echo of the last user message."""
    return f"Hello from the mock! You said: {text[:60]}"
