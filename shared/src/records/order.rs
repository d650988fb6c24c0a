//! The comparable form of a `changeVersion`, so that one string comparison in the table's
//! condition decides which of two changes of a record is newer.

use std::borrow::Cow;

/// Purely decimal versions up to this many digits compare numerically once zero-padded.
pub const ORDER_WIDTH: usize = 40;

/// The comparable form of a changeVersion: a purely decimal version is left-padded with zeros
/// to [`ORDER_WIDTH`] so that "10" sorts after "9"; anything else compares as the raw string.
pub fn order_key(change_version: &str) -> Cow<'_, str> {
    let decimal = !change_version.is_empty() && change_version.bytes().all(|b| b.is_ascii_digit());
    if decimal && change_version.len() < ORDER_WIDTH {
        Cow::Owned(format!("{change_version:0>ORDER_WIDTH$}"))
    } else {
        Cow::Borrowed(change_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_versions_compare_numerically() {
        assert!(order_key("9") < order_key("10"));
        assert!(order_key("99999") < order_key("100000"));
        assert_eq!(order_key("7").len(), ORDER_WIDTH);
        assert_eq!(order_key("007"), order_key("007"));
    }

    #[test]
    fn non_decimal_versions_compare_as_plain_strings() {
        assert_eq!(order_key("AAAAAAAB"), "AAAAAAAB");
        assert_eq!(order_key("1.5"), "1.5");
        assert_eq!(order_key("-3"), "-3");
        assert!(order_key("2024-01-02T10:00:00Z") < order_key("2024-01-02T10:00:01Z"));
        let long = "1".repeat(ORDER_WIDTH);
        assert_eq!(order_key(&long), long);
    }

    proptest! {
        #[test]
        fn order_of_decimal_versions_is_numeric_order(a in 0u128..u128::MAX, b in 0u128..u128::MAX) {
            let (ka, kb) = (order_key(&a.to_string()).into_owned(), order_key(&b.to_string()).into_owned());
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }
    }
}
