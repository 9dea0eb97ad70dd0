"""OpenRouter's routing extensions through the `openai` SDK's `extra_body`: `models` fallbacks,
`provider` preferences, `:floor`, `session_id`; and the model listing (DESIGN §3)."""

import openai
import pytest

from support import mock_echo, user

# Requests per routing assertion, each opening a different conversation: by default the gateway
# keeps a conversation on one provider, and draws it 4:1 for alpha (weight 1/price²), so the
# default alone passes an "always alpha" check 24 times in a row by luck about 1 in 200.
REPEAT = 24


def test_models_fallback_serves_when_the_first_model_fails(openai_client, fault_model):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=fault_model("unavailable"), messages=user("fall back please"),
        extra_body={"models": ["test/chat"]})
    completion = raw.parse()
    # The first model's only endpoint answers 503; the fallback model served.
    assert completion.model == "test/chat"
    assert completion.choices[0].message.content == mock_echo("fall back please")
    assert raw.headers["x-switchyard-model"] == "test/chat"
    assert raw.headers["x-switchyard-attempts"] == "2"


def test_models_fallback_in_a_stream(openai_client, fault_model):
    chunks = list(openai_client.chat.completions.create(
        model=fault_model("broken"), messages=user("stream fallback"), stream=True,
        extra_body={"models": ["test/other"]}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == mock_echo("stream fallback")
    assert chunks[-1].choices == [] and chunks[-1].model == "test/other"


@pytest.mark.parametrize("first", ["alpha", "beta"])
def test_provider_order_decides_who_serves(openai_client, first):
    for i in range(REPEAT):
        raw = openai_client.chat.completions.with_raw_response.create(
            model="test/chat", messages=user(f"order {i}"), extra_body={"provider": {"order": [first]}})
        assert raw.headers["x-switchyard-provider"] == first
        assert raw.parse().model_extra["provider"] == first


@pytest.mark.parametrize("order", [["beta", "alpha"], ["alpha", "beta"]], ids="-then-".join)
def test_provider_order_is_the_failover_order(openai_client, fault_model, order):
    # Both endpoints (alpha, beta) answer 503: the request tries both in the given order, and
    # the error names the last one tried.
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client.chat.completions.create(
            model=fault_model("unavailable-pair"), messages=user("x"),
            extra_body={"provider": {"order": order}})
    e = caught.value
    assert e.response.headers["x-switchyard-attempts"] == "2"
    assert e.response.headers["x-switchyard-provider"] == order[-1]
    assert e.body["metadata"]["provider_name"] == order[-1]


def test_provider_only_and_ignore_filter_endpoints(openai_client):
    for i in range(REPEAT):
        only = openai_client.chat.completions.create(
            model="test/chat", messages=user(f"only {i}"), extra_body={"provider": {"only": ["beta"]}})
        assert only.model_extra["provider"] == "beta"
        ignore = openai_client.chat.completions.create(
            model="test/chat", messages=user(f"ignore {i}"), extra_body={"provider": {"ignore": ["beta"]}})
        assert ignore.model_extra["provider"] == "alpha"


def test_provider_data_collection_deny_skips_collecting_providers(openai_client):
    # alpha is configured `data_collection: deny`, beta `allow`.
    for i in range(REPEAT):
        completion = openai_client.chat.completions.create(
            model="test/chat", messages=user(f"private {i}"),
            extra_body={"provider": {"data_collection": "deny"}})
        assert completion.model_extra["provider"] == "alpha"


def test_provider_sort_price_and_floor_variant_pick_the_cheapest(openai_client):
    # alpha is the cheaper endpoint of test/chat.
    for i in range(REPEAT):
        floor = openai_client.chat.completions.create(model="test/chat:floor", messages=user(f"cheap {i}"))
        assert floor.model_extra["provider"] == "alpha"
        assert floor.model == "test/chat"
        by_price = openai_client.chat.completions.create(
            model="test/chat", messages=user(f"by price {i}"), extra_body={"provider": {"sort": "price"}})
        assert by_price.model_extra["provider"] == "alpha"


@pytest.mark.parametrize("how", ["session_id", "x-session-id", "prompt_cache_key"])
def test_session_id_sticks_to_one_provider(openai_client, how):
    # Each request opens a different conversation, so only the session id can keep them together.
    served = set()
    for i in range(REPEAT):
        session = {"extra_headers": {"x-session-id": f"conversation-{how}"}} if how == "x-session-id" \
            else {"extra_body": {how: f"conversation-{how}"}}
        completion = openai_client.chat.completions.create(
            model="test/chat", messages=user(f"turn {i}"), **session)
        served.add(completion.model_extra["provider"])
    assert len(served) == 1, f"one session was served by {sorted(served)}"


def test_models_list_has_the_catalog(openai_client):
    models = {m.id: m for m in openai_client.models.list()}
    assert {"test/chat", "test/other", "test/tools", "test/recorded"} <= set(models)
    chat = models["test/chat"]
    assert chat.object == "model"
    extra = chat.model_extra
    assert extra["name"] == "Test Chat"
    assert extra["context_length"] == 32000
    # USD per token as decimal strings, the cheapest endpoint's (alpha: 0.5 / 1.5 per million).
    assert float(extra["pricing"]["prompt"]) == pytest.approx(0.5e-6)
    assert float(extra["pricing"]["completion"]) == pytest.approx(1.5e-6)
    assert isinstance(extra["pricing"]["prompt"], str)
    assert {"tools", "tool_choice", "response_format"} <= set(extra["supported_parameters"])
    assert extra["top_provider"]["max_completion_tokens"] == 4096
