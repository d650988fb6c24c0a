//! Protime's event signature: `Authorization: HMAC-SHA256 <base64(HMAC-SHA256(key, raw body))>`.
//!
//! Parsing and verification are separate so that a malformed header is rejected before any key
//! is looked up, and each failure has its own kind for logs and metrics.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The scheme Protime puts before the signature; compared case-insensitively.
pub const SCHEME: &str = "HMAC-SHA256";

const SIGNATURE_LEN: usize = 32;

/// Standard alphabet, padding optional: Protime pads, but a proxy or client that strips `=`
/// must not turn a valid signature into a rejection.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(true).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A webhook's private key. The HMAC key is its UTF-8 bytes; `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(SecretString);

impl SigningKey {
    pub fn new(key: impl Into<String>) -> Self {
        SigningKey(SecretString::from(key.into()))
    }

    /// The key as Protime issued it, for storing it in Secrets Manager.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        HmacSha256::new_from_slice(self.0.expose_secret().as_bytes()).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// A decoded signature from the `Authorization` header; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(***)")
    }
}

/// Why a request's signature was not accepted. All of them answer 401; the kind is for
/// logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Authorization header is missing")]
    Missing,
    #[error("the Authorization header does not use the HMAC-SHA256 scheme")]
    UnsupportedScheme,
    #[error("the Authorization header is not `HMAC-SHA256 <signature>`")]
    Malformed,
    #[error("the signature is not valid base64")]
    InvalidBase64,
    #[error("the signature is not 32 bytes long")]
    InvalidLength,
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// A stable, low-cardinality name for metrics and log fields.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::UnsupportedScheme => "unsupported_scheme",
            SignatureError::Malformed => "malformed",
            SignatureError::InvalidBase64 => "invalid_base64",
            SignatureError::InvalidLength => "invalid_length",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// Parses an `Authorization` header value (raw bytes, as headers may hold non-UTF-8).
///
/// The scheme is case-insensitive and surrounding whitespace is tolerated; exactly one
/// signature token must follow it.
pub fn parse_authorization(header: Option<&[u8]>) -> Result<Signature, SignatureError> {
    let raw = header.ok_or(SignatureError::Missing)?;
    let value = std::str::from_utf8(raw).map_err(|_| SignatureError::Malformed)?;
    let value = value.trim();
    if value.is_empty() {
        return Err(SignatureError::Missing);
    }
    let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(SignatureError::UnsupportedScheme);
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(|c: char| c.is_ascii_whitespace() || c == ',') {
        return Err(SignatureError::Malformed);
    }
    let bytes = BASE64.decode(token).map_err(|_| SignatureError::InvalidBase64)?;
    let bytes: [u8; SIGNATURE_LEN] = bytes.try_into().map_err(|_| SignatureError::InvalidLength)?;
    Ok(Signature(bytes))
}

/// Checks `signature` against the HMAC of the raw body in constant time.
pub fn verify(key: &SigningKey, body: &[u8], signature: &Signature) -> Result<(), SignatureError> {
    let mut mac = key.mac();
    mac.update(body);
    // verify_slice compares the whole tag in constant time (never a prefix).
    mac.verify_slice(&signature.0).map_err(|_| SignatureError::Mismatch)
}

/// The base64 signature Protime would send for `body`, for tests and the simulator.
pub fn sign(key: &SigningKey, body: &[u8]) -> String {
    let mut mac = key.mac();
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

/// The full `Authorization` header value for `body`.
pub fn authorization_header(key: &SigningKey, body: &[u8]) -> String {
    format!("{SCHEME} {}", sign(key, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = br#"{"id":1,"changeVersion":"7"}"#;

    fn key() -> SigningKey {
        SigningKey::new("privateWebhookKey")
    }

    fn header_for(body: &[u8]) -> String {
        authorization_header(&key(), body)
    }

    fn check(header: &str, body: &[u8]) -> Result<(), SignatureError> {
        let sig = parse_authorization(Some(header.as_bytes()))?;
        verify(&key(), body, &sig)
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently: printf '%s' "$BODY" | openssl dgst -sha256 -hmac privateWebhookKey -binary | base64
        assert_eq!(sign(&key(), BODY), "szscpeDNXwfaar8IvnWFD7f5hf0Tm66L5ZoyYHiMJJs=");
    }

    #[test]
    fn a_correct_signature_verifies() {
        assert_eq!(check(&header_for(BODY), BODY), Ok(()));
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_is_tolerated() {
        let sig = sign(&key(), BODY);
        for header in [format!("hmac-sha256 {sig}"), format!("  HMAC-SHA256   {sig}  "), format!("Hmac-Sha256\t{sig}")]
        {
            assert_eq!(check(&header, BODY), Ok(()), "{header}");
        }
    }

    #[test]
    fn padding_is_optional() {
        let sig = sign(&key(), BODY);
        let unpadded = sig.trim_end_matches('=');
        assert_ne!(unpadded, sig);
        assert_eq!(check(&format!("HMAC-SHA256 {unpadded}"), BODY), Ok(()));
    }

    #[test]
    fn each_malformed_header_has_its_own_kind() {
        let sig = sign(&key(), BODY);
        assert_eq!(parse_authorization(None), Err(SignatureError::Missing));
        assert_eq!(check("   ", BODY), Err(SignatureError::Missing));
        assert_eq!(check(&format!("Bearer {sig}"), BODY), Err(SignatureError::UnsupportedScheme));
        assert_eq!(check(&sig, BODY), Err(SignatureError::UnsupportedScheme));
        assert_eq!(check("HMAC-SHA256", BODY), Err(SignatureError::Malformed));
        assert_eq!(check(&format!("HMAC-SHA256 {sig} {sig}"), BODY), Err(SignatureError::Malformed));
        assert_eq!(check(&format!("HMAC-SHA256 {sig},HMAC-SHA256 {sig}"), BODY), Err(SignatureError::Malformed));
        assert_eq!(check("HMAC-SHA256 not*base64!", BODY), Err(SignatureError::InvalidBase64));
        assert_eq!(check("HMAC-SHA256 c2hvcnQ=", BODY), Err(SignatureError::InvalidLength));
        assert_eq!(parse_authorization(Some(b"HMAC-SHA256 \xff\xfe")), Err(SignatureError::Malformed));
    }

    #[test]
    fn a_signature_over_other_bytes_is_a_mismatch() {
        // Same JSON, re-serialised with a space: the signature no longer matches.
        let reserialised = br#"{"id": 1,"changeVersion":"7"}"#;
        assert_eq!(check(&header_for(BODY), reserialised), Err(SignatureError::Mismatch));
        let other_key = authorization_header(&SigningKey::new("other"), BODY);
        assert_eq!(check(&other_key, BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_prefix_of_the_right_signature_is_not_accepted() {
        let full = parse_authorization(Some(header_for(BODY).as_bytes())).unwrap();
        let mut truncated = full.0;
        truncated[31] ^= 0x01;
        assert_eq!(verify(&key(), BODY, &Signature(truncated)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn debug_output_hides_keys_and_signatures() {
        let sig = parse_authorization(Some(header_for(BODY).as_bytes())).unwrap();
        let shown = format!("{:?} {:?}", key(), sig);
        assert!(!shown.contains("privateWebhookKey"));
        assert_eq!(shown, "SigningKey(***) Signature(***)");
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(header in proptest::collection::vec(any::<u8>(), 0..128),
                                         body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(sig) = parse_authorization(Some(&header)) {
                // A random header only verifies if it happens to be the right HMAC.
                let ok = verify(&key(), &body, &sig).is_ok();
                prop_assert_eq!(ok, sign(&key(), &body) == BASE64.encode(sig.0));
            }
        }

        #[test]
        fn any_body_signed_with_the_key_verifies(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
            prop_assert_eq!(check(&header_for(&body), &body), Ok(()));
        }
    }
}
