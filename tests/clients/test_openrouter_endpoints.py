"""Endpoints beyond chat (DESIGN §3): embeddings through the `openai` SDK, and OpenRouter's
`/key` and `/generation`, which no SDK wraps, over plain HTTP. Each is skipped, with the
gateway's answer as the reason, until the gateway serves its path."""

import time

import pytest

from support import PRICE_ALPHA, PRICE_BETA, assert_conforms, http, schema_errors, skip_unless_served, user

GENERATION_WAIT_S = 5  # generation records are written by a batched writer, not on the request path


def test_embeddings(openai_client, gateway):
    skip_unless_served(gateway, "POST", "/v1/embeddings", body={"model": "test/embed", "input": "probe"})
    raw = openai_client.embeddings.with_raw_response.create(model="test/embed", input=["one two", "three"])
    resp = raw.parse()

    assert [d.index for d in resp.data] == [0, 1]
    # The mock's vectors have 8 dimensions; the SDK asked for base64 and decoded them.
    assert all(len(d.embedding) == 8 and all(isinstance(x, float) for x in d.embedding) for d in resp.data)
    assert resp.data[0].embedding != resp.data[1].embedding
    assert resp.model == "test/embed"
    assert resp.usage.prompt_tokens == 3 and resp.usage.total_tokens == 3
    extra = resp.usage.model_extra or {}
    assert extra.get("cost") == pytest.approx(3 * PRICE_ALPHA["prompt"] / 1e6)
    assert (resp.model_extra or {}).get("provider") == "alpha"
    assert raw.headers["x-generation-id"]
    assert_conforms("EmbeddingsResponse", raw.http_response.json())


# Known gap: OpenRouter's KeyResponse.data.rate_limit.requests is a required integer (OpenRouter
# always sends -1); for a key without `rpm` the gateway sends null. Tracked by the strict xfail.
KEY_GAPS = (
    ("$.data.rate_limit.requests", lambda p, m: m == "None is not of type 'integer'"),
)


def test_key_reports_limit_and_usage(gateway):
    status, body = skip_unless_served(gateway, "GET", "/v1/key", key=gateway.budget_key)
    assert status == 200, body
    assert_conforms("KeyResponse", body, KEY_GAPS)
    data = body["data"]
    assert data["label"] == "budget"
    assert data["limit"] == pytest.approx(0.000001)
    assert data["limit_reset"] is None, "OpenRouter's value for a limit that never resets"
    assert data["usage"] >= 0
    assert data["limit_remaining"] == pytest.approx(max(0.0, data["limit"] - data["usage"]), abs=1e-9)


def test_key_reports_its_rate_limit(gateway):
    status, body = skip_unless_served(gateway, "GET", "/v1/key", key=gateway.rate_limited_key)
    assert status == 200, body
    assert body["data"]["rate_limit"]["requests"] == 2
    assert body["data"]["limit"] is None and body["data"]["limit_remaining"] is None
    assert_conforms("KeyResponse", body)


def test_key_conforms_fully(gateway):
    status, body = skip_unless_served(gateway, "GET", "/v1/key", key=gateway.budget_key)
    assert status == 200 and schema_errors("KeyResponse", body) == []


def test_key_requires_a_valid_key(gateway):
    skip_unless_served(gateway, "GET", "/v1/key")
    status, _, _ = http("GET", gateway.url("/v1/key"), key="sk-not-a-key")
    assert status == 401


def test_generation_record_matches_the_response(openai_client, gateway):
    skip_unless_served(gateway, "GET", "/v1/generation?id=gen-probe")
    completion = openai_client.chat.completions.create(model="test/chat", messages=user("record me"))
    deadline = time.monotonic() + GENERATION_WAIT_S
    while True:
        status, _, body = http("GET", gateway.url(f"/v1/generation?id={completion.id}"), key=gateway.key)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200, body
    # Provider names are the operator's own (see PROVIDER_NAME_ENUM below).
    operator_names = ("$.data.provider_responses", lambda p, m: p.endswith(".provider_name") and "is not one of" in m)
    assert_conforms("GenerationResponse", body, (operator_names,))
    data = body["data"]
    assert data["id"] == completion.id
    assert data["model"] == "test/chat"
    assert data["provider_name"] == completion.model_extra["provider"]
    assert data["tokens_prompt"] == completion.usage.prompt_tokens
    assert data["tokens_completion"] == completion.usage.completion_tokens
    assert data["total_cost"] == pytest.approx(completion.usage.model_extra["cost"])
    assert data["streamed"] is False


# Not applicable, so exempt for good: OpenRouter's `provider_name` is an enum of the providers
# OpenRouter has; a self-hosted gateway's providers are whatever its operator names them.
PROVIDER_NAME_ENUM = ("$.data.endpoints", lambda p, m: p.endswith(".provider_name") and "is not one of" in m)
# Known gap (as on /v1/models): `stream` is listed in `supported_parameters`, which OpenRouter's
# `Parameter` enum does not have. Tracked by the strict xfail below.
STREAM_PARAMETER = ("$.data.endpoints", lambda p, m: ".supported_parameters[" in p
                    and m.startswith("'stream' is not one of"))


def model_endpoints(gateway):
    status, body = skip_unless_served(gateway, "GET", "/v1/models/test/chat/endpoints")
    assert status == 200, body
    return body


def test_model_endpoints_list_each_provider_with_its_price(gateway):
    body = model_endpoints(gateway)
    assert_conforms("ModelEndpointsResponse", body, (PROVIDER_NAME_ENUM, STREAM_PARAMETER))
    data = body["data"]
    assert data["id"] == "test/chat" and data["name"] == "Test Chat"
    by_provider = {e["provider_name"]: e for e in data["endpoints"]}
    assert set(by_provider) == {"alpha", "beta"}
    for provider, price in (("alpha", PRICE_ALPHA), ("beta", PRICE_BETA)):
        pricing = by_provider[provider]["pricing"]
        assert float(pricing["prompt"]) == pytest.approx(price["prompt"] / 1e6)
        assert float(pricing["completion"]) == pytest.approx(price["completion"] / 1e6)
        assert by_provider[provider]["context_length"] == 32000


def test_model_endpoints_conform_apart_from_provider_names(gateway):
    assert_conforms("ModelEndpointsResponse", model_endpoints(gateway), (PROVIDER_NAME_ENUM,))
