use super::query::percent_decode;
use super::*;

#[test]
fn prints_prices_per_token_as_decimal_strings() {
    assert_eq!(usd_per_token(150_000), "0.00000015");
    assert_eq!(usd_per_token(0), "0");
    assert_eq!(usd_per_token(1_500_000_000_000), "1.5");
    assert_eq!(usd_per_token(15_000_000), "0.000015");
}

const CATALOG: &str = r#"
providers:
  cheap: { preset: vllm, base_url: "http://127.0.0.1:1/v1" }
  pricey: { preset: openai }
models:
  a/text-only:
    context_length: 8000
    endpoints: [{ provider: cheap, model: t, price: { prompt: 0.1, completion: 0.2 } }]
  b/vision-tools:
    context_length: 128000
    input_modalities: [text, image]
    categories: [programming]
    endpoints: [{ provider: pricey, model: v, price: { prompt: 2, completion: 8, cached_prompt: 0.2, cache_write: 2.5 }, supports: [tools, response_format] }]
  c/embedder:
    output_modalities: [embeddings]
    endpoints: [{ provider: pricey, model: e, price: { prompt: 0.02 } }]
"#;

fn catalog() -> Catalog {
    crate::config::load_str(CATALOG, "t", &|_| None)
        .unwrap()
        .snapshot
        .catalog
}

fn ids(catalog: &Catalog, query: &str) -> Vec<String> {
    let (status, body) = models_response(catalog, Some(query));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn filters_sort_and_page_with_openrouters_parameter_names() {
    let c = catalog();
    assert_eq!(ids(&c, ""), ["a/text-only", "b/vision-tools", "c/embedder"]);
    assert_eq!(
        ids(&c, "supported_parameters=tools%2Cstructured_outputs"),
        ["b/vision-tools"]
    );
    // What the listing says every model takes, the filter finds on every model.
    assert_eq!(ids(&c, "supported_parameters=temperature%2Cstop").len(), 3);
    assert_eq!(ids(&c, "input_modalities=image"), ["b/vision-tools"]);
    assert_eq!(ids(&c, "output_modalities=embeddings"), ["c/embedder"]);
    assert_eq!(ids(&c, "output_modalities=all").len(), 3);
    assert_eq!(ids(&c, "category=programming"), ["b/vision-tools"]);
    assert_eq!(ids(&c, "q=TEXT"), ["a/text-only"]);
    assert_eq!(ids(&c, "context=100000"), ["b/vision-tools"]);
    assert_eq!(ids(&c, "max_price=1"), ["a/text-only", "c/embedder"]);
    assert_eq!(
        ids(&c, "model_authors=b,c"),
        ["b/vision-tools", "c/embedder"]
    );
    assert_eq!(ids(&c, "providers=CHEAP"), ["a/text-only"]);
    assert_eq!(ids(&c, "zdr=true"), ["a/text-only"]);
    assert_eq!(
        ids(&c, "sort=pricing-high-to-low"),
        ["b/vision-tools", "a/text-only", "c/embedder"]
    );
    assert_eq!(
        ids(&c, "sort=context-high-to-low&limit=1"),
        ["b/vision-tools"]
    );
    assert_eq!(ids(&c, "offset=2&use_rss=false"), ["c/embedder"]);
    let (_, body) = models_response(&c, Some("q=zzz&limit=5"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            v["total_count"].as_u64(),
            v["data"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn the_unfiltered_listing_is_rendered_once() {
    let c = catalog();
    let first = models_listing(&c);
    let (_, second) = models_response(&c, None);
    let (_, third) = models_response(&c, Some("&"));
    // The same buffer every time: no re-serialisation.
    assert_eq!(first.as_ptr(), second.as_ptr());
    assert_eq!(first.as_ptr(), third.as_ptr());
    let v: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(v["data"][1]["architecture"]["modality"], "text+image->text");
    assert_eq!(
        v["data"][1]["supported_parameters"],
        json!([
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "tools",
            "tool_choice",
            "response_format",
            "structured_outputs"
        ])
    );
}

#[test]
fn malformed_values_are_400s_naming_the_parameter() {
    let c = catalog();
    for query in [
        "limit=0",
        "limit=abc",
        "context=-1",
        "max_price=x",
        "sort=random",
        "input_modalities=smell",
        "q=%FF",
    ] {
        let (status, body) = models_response(&c, Some(query));
        assert_eq!(status, 400, "{query}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"]["param"].is_string(), "{query}: {v}");
    }
    assert_eq!(percent_decode("a%2Cb+c%").as_deref(), Some("a,b c%"));
}

#[test]
fn pricing_shows_the_cache_read_and_write_prices_when_set() {
    let c = catalog();
    let v = model_json(c.model("b/vision-tools").unwrap());
    let p = &v["pricing"];
    assert_eq!(
        (&p["input_cache_read"], &p["input_cache_write"]),
        (&json!("0.0000002"), &json!("0.0000025"))
    );
    let v = model_json(c.model("a/text-only").unwrap());
    assert!(v["pricing"].get("input_cache_write").is_none(), "{v}");
}
