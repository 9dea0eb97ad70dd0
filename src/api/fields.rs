//! A JSON object's top-level fields as byte ranges of the original body.
//!
//! Requests are mostly `messages`, which the gateway forwards but never needs to understand.
//! Parsing only the top level into ranges lets the gateway read its routing fields and write
//! the upstream body by copying untouched values as slices, without building a tree of the
//! conversation or re-serialising it.

use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use super::error::ApiError;

#[derive(Debug)]
pub struct TopLevelFields {
    body: Bytes,
    /// Unescaped key and the range of its raw value in `body`, in the client's order.
    fields: Vec<(String, Range<usize>)>,
}

impl TopLevelFields {
    pub fn parse(body: Bytes) -> Result<TopLevelFields, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the request body is empty; expected a JSON object",
            ));
        }
        let fields = match super::strict::object_fields(&body) {
            Some(ranges) => fields_from_ranges(&body, ranges)?,
            None => fields_by_serde(&body)?,
        };
        Ok(TopLevelFields { body, fields })
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The raw JSON text of a field's value.
    pub fn raw(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| &self.body[r.clone()])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields
            .iter()
            .map(|(k, r)| (k.as_str(), &self.body[r.clone()]))
    }

    /// A field deserialized as `T`; `None` when absent or JSON `null`.
    pub fn get<'a, T: serde::Deserialize<'a>>(
        &'a self,
        key: &str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.raw(key) {
            None | Some(b"null") => Ok(None),
            Some(raw) => serde_json::from_slice(raw)
                .map(Some)
                .map_err(|_| ApiError::bad_param(key, format!("`{key}` must be {expected}"))),
        }
    }
}

/// The strict pass's fields (`strict.rs`): keys without escapes, in UTF-8 checked by it.
fn fields_from_ranges(
    body: &[u8],
    ranges: super::strict::FieldRanges,
) -> Result<Vec<(String, Range<usize>)>, ApiError> {
    let mut fields: Vec<(String, Range<usize>)> = Vec::with_capacity(ranges.len());
    for (key, value) in ranges {
        let key = String::from_utf8_lossy(&body[key]);
        refuse_duplicate(&fields, &key)?;
        fields.push((key.into_owned(), value));
    }
    Ok(fields)
}

/// serde's reading, for whatever the strict pass leaves to it: its errors are the client's.
fn fields_by_serde(body: &[u8]) -> Result<Vec<(String, Range<usize>)>, ApiError> {
    let base = body.as_ptr() as usize;
    let pairs = raw_fields(body).map_err(json_error)?;
    let mut fields: Vec<(String, Range<usize>)> = Vec::with_capacity(pairs.len());
    for (key, raw) in pairs {
        let start = raw.get().as_ptr() as usize - base;
        refuse_duplicate(&fields, &key)?;
        fields.push((key.into_owned(), start..start + raw.get().len()));
    }
    Ok(fields)
}

fn refuse_duplicate(fields: &[(String, Range<usize>)], key: &str) -> Result<(), ApiError> {
    if fields.iter().any(|(k, _)| k == key) {
        return Err(ApiError::bad_param(
            key,
            format!("field `{key}` appears twice in the JSON body"),
        ));
    }
    Ok(())
}

fn json_error(e: serde_json::Error) -> ApiError {
    let msg = e.to_string();
    if msg.contains("invalid type") && e.line() == 1 && e.column() <= 1 {
        return ApiError::bad_request("the request body must be a JSON object");
    }
    ApiError::bad_request(format!("the request body is not valid JSON: {msg}"))
}

/// A JSON object's top-level keys (borrowed unless they hold escapes) and raw values, in
/// order. Fails on anything that is not one JSON object.
pub fn raw_fields(body: &[u8]) -> serde_json::Result<Vec<(Cow<'_, str>, &RawValue)>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let pairs = de.deserialize_map(FieldsVisitor)?;
    de.end()?;
    Ok(pairs)
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            out.push((key, value));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_raw_values_and_order() {
        let f = TopLevelFields::parse(Bytes::from_static(
            br#"{"model":"a/b", "messages":[{"role":"user","content":"hi"}],"n":1}"#,
        ))
        .unwrap();
        assert_eq!(f.raw("model"), Some(&br#""a/b""#[..]));
        assert_eq!(
            f.raw("messages"),
            Some(&br#"[{"role":"user","content":"hi"}]"#[..])
        );
        let keys: Vec<&str> = f.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["model", "messages", "n"]);
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for body in [
            &b"[1,2]"[..],
            b"\"x\"",
            b"{",
            b"",
            b"{\"a\":1} trailing",
            b"\xff\xfe",
        ] {
            let e = TopLevelFields::parse(Bytes::copy_from_slice(body)).unwrap_err();
            assert_eq!(e.status, 400, "{body:?}");
        }
    }

    #[test]
    fn refuses_duplicate_fields() {
        let e =
            TopLevelFields::parse(Bytes::from_static(br#"{"model":"a","model":"b"}"#)).unwrap_err();
        assert!(e.message.contains("twice"));
    }

    #[test]
    fn skips_deeply_nested_values_without_recursing() {
        // Values the gateway only forwards are skipped, not parsed: nesting cannot exhaust
        // the stack (fields it does parse hit serde_json's recursion limit: a 400).
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200_000), "]".repeat(200_000));
        assert!(TopLevelFields::parse(Bytes::from(deep)).is_ok());
        let deep = format!("{{\"provider\":{}1{}}}", "[".repeat(1000), "]".repeat(1000));
        let fields = TopLevelFields::parse(Bytes::from(deep)).unwrap();
        let e = fields
            .get::<serde_json::Value>("provider", "an object")
            .unwrap_err();
        assert_eq!(e.status, 400);
    }
}
