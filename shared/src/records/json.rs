//! A JSON tree that keeps numbers exactly as written and refuses what DynamoDB cannot store.
//!
//! `serde_json::Value` turns large integers into lossy floats and silently keeps the last of
//! duplicate keys. Events are stored verbatim, so this parser walks the document through
//! `RawValue`s instead: numbers keep their text, duplicate keys and excessive nesting are errors.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;

/// DynamoDB allows 32 levels of nested maps and lists.
pub const MAX_DEPTH: usize = 32;

/// A parsed JSON value. Objects keep their fields in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's text as it appeared in the document.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of `key` if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("not valid JSON: {0}")]
    Syntax(String),
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    #[error("number {0} cannot be stored exactly (at most 38 significant digits, magnitude 1e-130 to 1e126)")]
    NumberOutOfRange(String),
}

/// Compact JSON text: numbers exactly as they were written, fields in document order.
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => f.write_str(n),
            Json::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{value}", serde_json::to_string(name).map_err(|_| fmt::Error)?)?;
                }
                f.write_str("}")
            }
        }
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError::Syntax(e.to_string())
    }
}

/// Parses one JSON document.
pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    let raw: &RawValue = serde_json::from_slice(bytes)?;
    parse_raw(raw, 0)
}

/// Parses a document that was already split out as raw JSON text.
pub fn parse_raw(raw: &RawValue, depth: usize) -> Result<Json, JsonError> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            if depth >= MAX_DEPTH {
                return Err(JsonError::TooDeep);
            }
            let RawObject(fields) = serde_json::from_str(text)?;
            if let Some(key) = first_duplicate(&fields) {
                return Err(JsonError::DuplicateKey(key.chars().take(64).collect()));
            }
            let fields =
                fields.into_iter().map(|(k, v)| Ok((k, parse_raw(v, depth + 1)?))).collect::<Result<_, JsonError>>()?;
            Ok(Json::Object(fields))
        }
        Some(b'[') => {
            if depth >= MAX_DEPTH {
                return Err(JsonError::TooDeep);
            }
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            let items = items.into_iter().map(|v| parse_raw(v, depth + 1)).collect::<Result<_, _>>()?;
            Ok(Json::Array(items))
        }
        Some(b'"') => Ok(Json::String(serde_json::from_str(text)?)),
        Some(b't') => Ok(Json::Bool(true)),
        Some(b'f') => Ok(Json::Bool(false)),
        Some(b'n') => Ok(Json::Null),
        _ if fits_dynamodb_number(text) => Ok(Json::Number(text.to_owned())),
        _ => Err(JsonError::NumberOutOfRange(text.chars().take(48).collect())),
    }
}

/// The document's top level as raw text: its items if it is an array, else the whole value.
pub fn split_top(bytes: &[u8]) -> Result<Top<'_>, JsonError> {
    let raw: &RawValue = serde_json::from_slice(bytes)?;
    if raw.get().starts_with('[') {
        Ok(Top::Array(serde_json::from_str(raw.get())?))
    } else {
        Ok(Top::Value(raw))
    }
}

/// What [`split_top`] found.
pub enum Top<'a> {
    Array(Vec<&'a RawValue>),
    Value(&'a RawValue),
}

/// An object's fields in order, borrowed as raw text, duplicates included (the caller refuses
/// them as [`JsonError::DuplicateKey`]).
struct RawObject<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields: Vec<(String, &'de RawValue)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key, value));
                }
                Ok(RawObject(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// A key that occurs twice, if any. Pairwise for the small objects events are made of; sorted
/// for large ones, so a huge object cannot make this quadratic.
fn first_duplicate<V>(fields: &[(String, V)]) -> Option<&str> {
    if fields.len() <= 16 {
        fields
            .iter()
            .enumerate()
            .find(|(i, (k, _))| fields[..*i].iter().any(|(other, _)| other == k))
            .map(|(_, (k, _))| k.as_str())
    } else {
        let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    }
}

/// Whether a JSON number (already valid JSON syntax) is within DynamoDB's number type:
/// up to 38 significant digits and a magnitude between 1e-130 and 1e126 (or zero).
pub fn fits_dynamodb_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let Some(first) = digits.find(|c| c != '0') else {
        // Zero, whatever its exponent; the exponent must still be a number.
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        return !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit());
    };
    let last = digits.rfind(|c| c != '0').unwrap_or(first);
    if last - first + 1 > 38 {
        return false;
    }
    // An exponent beyond i64 is far outside DynamoDB's range either way.
    let Ok(exponent) = exponent.strip_prefix('+').unwrap_or(exponent).parse::<i64>() else {
        return false;
    };
    // Decimal exponent of the most significant digit: d.ddd × 10^magnitude (checked: the
    // exponent can be anything up to i64's limits).
    let lead = i64::try_from(int_part.len()).ok().and_then(|n| n.checked_sub(1 + i64::try_from(first).ok()?));
    match lead.and_then(|lead| lead.checked_add(exponent)) {
        Some(magnitude) => (-130..=125).contains(&magnitude),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any exponent, up to i64's limits and past them, is answered without overflow, and
        /// the answer is the magnitude's (computed here in i128).
        #[test]
        fn extreme_exponents_are_judged_without_overflow(
            int_part in "[1-9][0-9]{0,5}",
            frac in "[0-9]{0,5}",
            exponent in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), -200i64..200],
            negative in any::<bool>(),
        ) {
            let sign = if negative { "-" } else { "" };
            let dot = if frac.is_empty() { String::new() } else { format!(".{frac}") };
            let text = format!("{sign}{int_part}{dot}e{exponent}");
            let magnitude = int_part.len() as i128 - 1 + i128::from(exponent);
            prop_assert_eq!(fits_dynamodb_number(&text), (-130..=125).contains(&magnitude), "{}", text);
            let beyond = format!("{int_part}e{exponent}0000000000");
            prop_assert!(!fits_dynamodb_number(&beyond) || exponent == 0);
        }
    }

    #[test]
    fn numbers_with_exponents_past_i64_are_refused_not_a_panic() {
        for text in
            ["12e9223372036854775807", "1e-9223372036854775808", "9.9e9223372036854775807", "1e99999999999999999999"]
        {
            assert!(!fits_dynamodb_number(text), "{text}");
        }
        assert!(fits_dynamodb_number("0e99999999999999999999"), "zero is zero");
        assert!(fits_dynamodb_number("1.5e3") && fits_dynamodb_number("-1e125") && !fits_dynamodb_number("1e126"));
        assert_eq!(
            parse(b"{\"n\":12e9223372036854775807}"),
            Err(JsonError::NumberOutOfRange("12e9223372036854775807".into()))
        );
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        let doc = parse(br#"{"big":123456789012345678901234567890,"f":0.1,"e":1E5,"n":-7}"#).unwrap();
        assert_eq!(doc.get("big"), Some(&Json::Number("123456789012345678901234567890".into())));
        assert_eq!(doc.get("f"), Some(&Json::Number("0.1".into())));
        assert_eq!(doc.get("e"), Some(&Json::Number("1E5".into())));
        assert_eq!(doc.get("n"), Some(&Json::Number("-7".into())));
    }

    #[test]
    fn all_value_kinds_parse_in_order() {
        let doc = parse(br#" {"b":true,"c":false,"z":null,"s":"x\"y","a":[1,{"k":"v"}],"o":{}} "#).unwrap();
        let Json::Object(fields) = &doc else { panic!("object expected") };
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "c", "z", "s", "a", "o"]);
        assert_eq!(doc.get("s"), Some(&Json::String("x\"y".into())));
        assert_eq!(
            doc.get("a"),
            Some(&Json::Array(vec![
                Json::Number("1".into()),
                Json::Object(vec![("k".into(), Json::String("v".into()))])
            ]))
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        assert_eq!(parse(br#"{"a":1,"a":2}"#), Err(JsonError::DuplicateKey("a".into())));
        assert_eq!(parse(br#"{"o":{"x":1,"x":1}}"#), Err(JsonError::DuplicateKey("x".into())));
    }

    #[test]
    fn duplicates_are_found_in_small_and_large_objects() {
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let unique = format!("{{{}}}", many.join(","));
        assert!(parse(unique.as_bytes()).is_ok());
        let doubled = format!("{{{},\"k7\":0}}", many.join(","));
        assert_eq!(parse(doubled.as_bytes()), Err(JsonError::DuplicateKey("k7".into())));
    }

    #[test]
    fn nesting_is_limited_to_dynamodb_depth() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::TooDeep));
        // Far deeper than serde_json's own recursion limit: still an error, never a crash.
        let abyss = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(abyss.as_bytes()).is_err());
    }

    #[test]
    fn numbers_outside_dynamodb_range_are_rejected() {
        for ok in [
            "0",
            "-0",
            "0.000",
            "1e125",
            "9.9e125",
            "1e-130",
            "12345678901234567890123456789012345678",
            "1000000000000000000000000000000000000000000",
            "0.5E+3",
        ] {
            assert!(fits_dynamodb_number(ok), "{ok}");
        }
        for bad in ["1e126", "1e-131", "123456789012345678901234567890123456789", "1e99999999999999999999"] {
            assert!(!fits_dynamodb_number(bad), "{bad}");
        }
        assert!(matches!(parse(b"[1e400]"), Err(JsonError::NumberOutOfRange(_)) | Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"[1e200]"), Err(JsonError::NumberOutOfRange(_))));
    }

    #[test]
    fn syntax_errors_and_non_utf8_are_errors() {
        for bad in [&b""[..], b"{", b"{\"a\":}", b"\xff\xfe", b"[1,]", b"{\"a\":1} x"] {
            assert!(matches!(parse(bad), Err(JsonError::Syntax(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_parsed_document_prints_back_as_compact_json_with_exact_numbers() {
        let text = r#"{"a":[1,2.50,1e400000,-0],"b":{"c\"d":null,"e":true},"f":"ü\n"}"#;
        let doc = parse(text.replace("1e400000", "12345678901234567890123").as_bytes()).unwrap();
        assert_eq!(
            doc.to_string(),
            r#"{"a":[1,2.50,12345678901234567890123,-0],"b":{"c\"d":null,"e":true},"f":"ü\n"}"#
        );
        assert_eq!(parse(doc.to_string().as_bytes()).unwrap(), doc);
    }
}
