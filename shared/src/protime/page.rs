//! A page of a list or delta answer, kept as Protime sent it, and the links a paging loop has
//! followed (pure: no HTTP client, no AWS).

use super::error::ProtimeError;
use crate::records::json::Json;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One page of a list or delta answer, as Protime sent it: the body is kept whole (once, shared
/// by reference with the keep-store) and read through [`Page::envelope`], which borrows each
/// record's text instead of building a tree of the page.
#[derive(Clone, PartialEq, Eq)]
pub struct Page {
    pub body: bytes::Bytes,
}

/// A page's size, never its text (it holds records and, in a delta, the next token).
impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").field("bytes", &self.body.len()).finish()
    }
}

/// A page read: its records, each its own JSON text in the body (parsed one at a time, by
/// whoever applies them), and its links.
pub struct Envelope<'a> {
    pub records: Vec<&'a RawValue>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

/// How many records and which links, never their text (records, and a delta's next token).
impl std::fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("records", &self.records.len())
            .field("next_link", &self.next_link.is_some())
            .field("delta_link", &self.delta_link.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct WireEnvelope<'a> {
    #[serde(borrow)]
    value: Option<Vec<&'a RawValue>>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<serde_json::Value>,
    #[serde(rename = "deltaLink", default)]
    delta_link: Option<serde_json::Value>,
}

/// A page read whole: every record parsed (for tools and tests; the syncer's page loop reads records
/// one at a time through [`Page::envelope`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPage {
    pub records: Vec<Json>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

impl Page {
    pub fn new(body: impl Into<bytes::Bytes>) -> Self {
        Page { body: body.into() }
    }

    /// A page with these records and links, as Protime would send it (fakes and tests).
    pub fn from_parts(records: &[Json], next_link: Option<&str>, delta_link: Option<&str>) -> Self {
        let mut body = String::from("{\"value\":[");
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&record.to_string());
        }
        body.push(']');
        for (name, link) in [("nextLink", next_link), ("deltaLink", delta_link)] {
            if let Some(link) = link {
                body.push_str(&format!(",\"{name}\":{}", serde_json::Value::from(link)));
            }
        }
        body.push('}');
        Page::new(body)
    }

    /// Reads the page's envelope: its `value` array (each record left as its text) and its
    /// links. Only an envelope that cannot be read is an error (not JSON, no `value` array); a
    /// record that cannot be used is its own verdict, when it is applied. Errors never quote
    /// the body (a delta's links hold the next token).
    pub fn envelope(&self) -> Result<Envelope<'_>, ProtimeError> {
        let wire: WireEnvelope<'_> = serde_json::from_slice(&self.body).map_err(|e| {
            ProtimeError::InvalidResponse(format!("page: not valid JSON at line {} column {}", e.line(), e.column()))
        })?;
        let records = wire.value.ok_or_else(|| ProtimeError::InvalidResponse("page has no \"value\" array".into()))?;
        let link = |value: Option<serde_json::Value>| match value {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        Ok(Envelope { records, next_link: link(wire.next_link), delta_link: link(wire.delta_link) })
    }

    /// The whole page parsed, each record with the strict rules of [`crate::records::json`].
    pub fn read(&self) -> Result<ReadPage, ProtimeError> {
        let envelope = self.envelope()?;
        let records = envelope
            .records
            .iter()
            .map(|raw| crate::records::json::parse_raw(raw, 0))
            .collect::<Result<_, _>>()
            .map_err(|e| ProtimeError::InvalidResponse(format!("page: a record: {e}")))?;
        Ok(ReadPage { records, next_link: envelope.next_link, delta_link: envelope.delta_link })
    }
}

/// The links a paging loop has followed: one that comes back would loop forever.
#[derive(Debug, Default)]
pub struct LinksFollowed(std::collections::HashSet<String>);

impl LinksFollowed {
    pub fn first_time(&mut self, link: &str) -> Result<(), ProtimeError> {
        if self.0.insert(link.to_owned()) {
            Ok(())
        } else {
            Err(ProtimeError::InvalidResponse("Protime returned a page link already followed".into()))
        }
    }
}
