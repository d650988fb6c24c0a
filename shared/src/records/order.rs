//! The comparable form of a `changeVersion`, so that one string comparison in the table's
//! condition decides which of two changes of a record is newer.
//!
//! Protime documents changeVersions as compared by string, and its real ones are fixed-width
//! upper-case hex (`"0000090200004BD0000A"`): some all digits, some with letters. Every version
//! is left-padded with `0` to [`ORDER_WIDTH`] characters, whatever its characters, so that
//! versions of equal length compare exactly as Protime documents, and shorter decimal or hex
//! versions compare as numbers (`"10"` after `"9"`). Padding only some versions would mix two
//! orders and make a newer all-digit version look older than a lettered one.
//! See `docs/decisions/0006-a-64-character-order-key.md`.

use std::borrow::Cow;

/// Every order key is this long; a longer changeVersion is not a valid event.
pub const ORDER_WIDTH: usize = 64;

/// The comparable form of a changeVersion: left-padded with `0` to [`ORDER_WIDTH`].
/// A version longer than that (refused by event parsing) is returned as it is.
pub fn order_key(change_version: &str) -> Cow<'_, str> {
    if change_version.len() >= ORDER_WIDTH {
        Cow::Borrowed(change_version)
    } else {
        Cow::Owned(format!("{change_version:0>ORDER_WIDTH$}"))
    }
}

/// Whether a stored `changeOrder` was written by this rule: keys of earlier releases (decimal
/// versions padded to 40, anything else raw) are recognised by their length and compared by
/// recomputing the key from the stored `changeVersion`.
pub fn is_current_order_key(stored: &str) -> bool {
    stored.len() == ORDER_WIDTH
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn protimes_real_versions_keep_their_string_order_whether_or_not_they_hold_letters() {
        // The case that was lost: a lettered version stored, a newer all-digit one arriving.
        assert!(order_key("0000090200004BD0000A") < order_key("00000902000050000000"));
        assert!(order_key("00000902000049999999") < order_key("0000090200004BD0000A"));
        assert_eq!(order_key("0000090200004BD0000A").len(), ORDER_WIDTH);
    }

    #[test]
    fn shorter_versions_compare_as_numbers() {
        assert!(order_key("9") < order_key("10"));
        assert!(order_key("99999") < order_key("100000"));
        assert!(order_key("F") < order_key("10"));
        assert_eq!(order_key("7"), format!("{}7", "0".repeat(ORDER_WIDTH - 1)));
    }

    #[test]
    fn a_version_of_the_full_width_is_its_own_key() {
        let full = "A".repeat(ORDER_WIDTH);
        assert_eq!(order_key(&full), full.as_str());
        assert!(is_current_order_key(&order_key("1")));
        assert!(!is_current_order_key("0000090200004BD0000A"));
    }

    /// A fixed-width (20) upper-case hex version; about half are all digits.
    fn version() -> impl Strategy<Value = String> {
        prop_oneof!["[0-9]{20}", "[0-9A-F]{20}"]
    }

    proptest! {
        #[test]
        fn the_order_of_fixed_width_hex_versions_is_their_string_order(a in version(), b in version()) {
            prop_assert_eq!(order_key(&a).cmp(&order_key(&b)), a.cmp(&b));
        }

        #[test]
        fn the_order_of_decimal_versions_is_numeric_order(a in 0u128..u128::MAX, b in 0u128..u128::MAX) {
            let (ka, kb) = (order_key(&a.to_string()).into_owned(), order_key(&b.to_string()).into_owned());
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }
    }
}
