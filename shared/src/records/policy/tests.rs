//! Unit tests of `policy`.

use super::*;
use crate::records::json;
use proptest::prelude::*;

fn key() -> HashKey {
    HashKey::new("0123456789abcdef0123456789abcdef").unwrap()
}

fn fields(text: &str) -> Vec<(String, Json)> {
    match json::parse(text.as_bytes()).unwrap() {
        Json::Object(fields) => fields,
        other => panic!("{other:?}"),
    }
}

fn applied(policy: &str, collection: Collection, record: &str) -> String {
    let mut data = fields(record);
    policy.parse::<FieldPolicy>().unwrap().apply(collection, &mut data, Some(&key()));
    Json::Object(data).to_string()
}

#[test]
fn the_default_drops_the_pin_code_and_none_keeps_everything() {
    let default: FieldPolicy = DEFAULT_FIELD_POLICY.parse().unwrap();
    assert!(!default.hashes());
    let person = r#"{"id":1,"changeVersion":"v","name":"Ann","pinCode":"1234"}"#;
    assert_eq!(
        applied(DEFAULT_FIELD_POLICY, Collection::People, person),
        r#"{"id":1,"changeVersion":"v","name":"Ann"}"#
    );
    assert_eq!(applied("none", Collection::People, person), person);
    assert_eq!(applied(DEFAULT_FIELD_POLICY, Collection::Clockings, person), person, "people's rules only");
    assert_eq!("none".parse::<FieldPolicy>().unwrap().to_setting(), "none");
}

#[test]
fn drop_and_hash_reach_nested_fields_and_every_element_of_an_array() {
    let policy =
        "people.socialSecurityNumber=drop,people.email=hash,people.address.street=drop,people.phones.number=hash";
    let record = r#"{"id":1,"changeVersion":"v","socialSecurityNumber":"85.07.30-033.61","email":"ann@example.com","address":{"street":"Main 1","town":"Gent"},"phones":[{"kind":"work","number":"+32 9 000"},{"kind":"home"}]}"#;
    let out = applied(policy, Collection::People, record);
    let email = key().hash(&Json::String("ann@example.com".into()));
    let phone = key().hash(&Json::String("+32 9 000".into()));
    assert_eq!(
        out,
        format!(
            r#"{{"id":1,"changeVersion":"v","email":"{email}","address":{{"town":"Gent"}},"phones":[{{"kind":"work","number":"{phone}"}},{{"kind":"home"}}]}}"#
        )
    );
    assert!(is_hash(&email) && email.len() == HASH_PREFIX.len() + 43);
    assert_eq!(applied(policy, Collection::People, &out), out, "a second application changes nothing");
    assert_eq!(policy.parse::<FieldPolicy>().unwrap().to_setting(), policy);
}

#[test]
fn equal_values_hash_equal_under_one_key_and_differently_under_another() {
    let a = key().hash(&Json::String("1990-02-03".into()));
    assert_eq!(a, key().hash(&Json::String("1990-02-03".into())));
    assert_ne!(a, key().hash(&Json::String("1990-02-04".into())));
    let other = HashKey::new("another key of at least thirty-two bytes").unwrap();
    assert_ne!(a, other.hash(&Json::String("1990-02-03".into())));
    assert_eq!(format!("{:?}", key()), "HashKey(<redacted>)");
    assert!(HashKey::new("short").is_none());
}

#[test]
fn a_value_hashes_alike_as_sent_and_as_read_back_from_the_table() {
    for (sent, stored) in [("25.50", "25.5"), ("2.55e1", "25.5"), ("-0.0", "0"), ("100", "1e2"), ("0.001", "1E-3")] {
        assert_eq!(canonical(&Json::Number(sent.into())), canonical(&Json::Number(stored.into())), "{sent}");
    }
    assert_eq!(canonical(&Json::Number("25.50".into())), "25.5");
    assert_eq!(canonical(&Json::Number("-120".into())), "-120");
    assert_eq!(canonical(&Json::Number("0.25".into())), "0.25");
    let sent = json::parse(br#"{"b":1.50,"a":"x"}"#).unwrap();
    let stored = json::parse(br#"{"a":"x","b":1.5}"#).unwrap();
    assert_eq!(key().hash(&sent), key().hash(&stored));
    assert_eq!(canonical(&sent), r#"{"a":"x","b":1.5}"#);
}

#[test]
fn without_a_key_a_field_to_hash_is_dropped_and_null_stays_null() {
    let policy: FieldPolicy = "people.email=hash,people.phone=hash".parse().unwrap();
    let mut data = fields(r#"{"id":1,"changeVersion":"v","email":"ann@example.com","phone":null}"#);
    policy.apply(Collection::People, &mut data, None);
    assert_eq!(Json::Object(data).to_string(), r#"{"id":1,"changeVersion":"v"}"#);
    let mut data = fields(r#"{"id":1,"changeVersion":"v","phone":null}"#);
    policy.apply(Collection::People, &mut data, Some(&key()));
    assert_eq!(Json::Object(data).to_string(), r#"{"id":1,"changeVersion":"v","phone":null}"#);
}

#[test]
fn a_malformed_entry_is_named_with_what_is_wrong() {
    for (policy, entry, problem) in [
        ("people.email=encrypt", "people.email=encrypt", "drop or hash"),
        ("persons.email=drop", "persons.email=drop", "18 collections"),
        ("people=drop", "people=drop", "expected"),
        ("people.email", "people.email", "expected"),
        ("people..email=drop", "people..email=drop", "empty"),
        ("people.id=drop", "people.id=drop", "always kept"),
        ("people.email=drop, people.email=hash", "people.email=hash", "another entry"),
        ("people.address=drop,people.address.town=hash", "people.address.town=hash", "another entry"),
        ("people.email= hash", "people.email= hash", "no space"),
        ("clockings.date=hash", "clockings.date=hash", "always kept"),
    ] {
        let error = policy.parse::<FieldPolicy>().unwrap_err();
        assert_eq!(error.entry, entry, "{policy}");
        assert!(error.to_string().contains(problem) && error.to_string().contains("FIELD_POLICY"), "{error}");
    }
    assert!("people.person.id=drop".parse::<FieldPolicy>().is_ok(), "a nested id is a field like any other");
}

proptest! {
    /// Whatever the record, a dropped field is gone, a hashed one is a hash, nothing else
    /// changes, and applying the policy again changes nothing.
    #[test]
    fn a_policy_touches_only_its_fields_and_is_idempotent(
        others in proptest::collection::btree_map("[a-z]{1,6}", "[ -~]{0,12}", 0..6),
        email in proptest::option::of("[ -~]{0,20}"),
        secret in proptest::option::of("[0-9]{1,9}"),
    ) {
        let mut data: Vec<(String, Json)> = vec![("id".into(), Json::Number("1".into()))];
        data.extend(others.iter().filter(|(k, _)| *k != "email" && *k != "ssn" && *k != "id")
            .map(|(k, v)| (k.clone(), Json::String(v.clone()))));
        if let Some(email) = &email { data.push(("email".into(), Json::String(email.clone()))); }
        if let Some(secret) = &secret { data.push(("ssn".into(), Json::Number(secret.clone()))); }
        let policy: FieldPolicy = "people.ssn=drop,people.email=hash".parse().unwrap();
        let mut once = data.clone();
        policy.apply(Collection::People, &mut once, Some(&key()));
        prop_assert!(once.iter().all(|(k, _)| k != "ssn"));
        for (name, value) in &once {
            match (name.as_str(), value) {
                ("email", Json::String(s)) => prop_assert!(is_hash(s)),
                (name, value) => prop_assert!(data.contains(&(name.to_owned(), value.clone()))),
            }
        }
        let mut twice = once.clone();
        policy.apply(Collection::People, &mut twice, Some(&key()));
        prop_assert_eq!(twice, once);
    }
}
