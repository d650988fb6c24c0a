//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per document, which
//! CloudWatch Logs turns into metrics without any API call or extra permission.
//!
//! Namespace `METRICS_NAMESPACE` (default `ProtimeWebhooks`); every document has the dimension
//! `Function` (`receiver`, `renewer`, `syncer` or `publisher`), and where it applies `Collection`, `Reason` or `Outcome`.

use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// `METRICS_NAMESPACE` when unset (read by [`crate::config`]).
pub const DEFAULT_NAMESPACE: &str = "ProtimeWebhooks";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One EMF document under construction.
#[derive(Debug, Clone)]
pub struct MetricDoc {
    namespace: String,
    dimensions: Vec<(&'static str, String)>,
    /// Which dimension combinations to publish, each a list of dimension names.
    dimension_sets: Vec<Vec<&'static str>>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

impl MetricDoc {
    pub fn new(namespace: &str, function: &str) -> Self {
        MetricDoc {
            namespace: namespace.to_owned(),
            dimensions: vec![("Function", function.to_owned())],
            dimension_sets: vec![vec!["Function"]],
            metrics: Vec::new(),
        }
    }

    /// Adds a dimension, published both alone with `Function` and as `Function` + it.
    pub fn dimension(mut self, name: &'static str, value: &str) -> Self {
        self.dimensions.push((name, value.to_owned()));
        self.dimension_sets.push(vec!["Function", name]);
        self
    }

    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        if value.is_finite() {
            self.metrics.push((name, unit, value));
        }
        self
    }

    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.metric(name, Unit::Count, value as f64)
    }

    /// The document as EMF JSON at `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: u64) -> Value {
        let definitions: Vec<Value> =
            self.metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": self.dimension_sets,
                    "Metrics": definitions,
                }]
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), json!(value));
        }
        for (name, _, value) in &self.metrics {
            root.insert((*name).into(), json!(value));
        }
        Value::Object(root)
    }

    /// Writes the document as one line on stdout, where Lambda's log agent picks it up.
    pub fn emit(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        println!("{}", self.to_json(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_follows_the_emf_specification() {
        let doc = MetricDoc::new("Ns", "receiver")
            .dimension("Collection", "clockings")
            .count("EventsStored", 3)
            .metric("StoreLatency", Unit::Milliseconds, 4.5)
            .metric("Skipped", Unit::None, f64::NAN);
        let v = doc.to_json(1_700_000_000_000);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(directive["Dimensions"], json!([["Function"], ["Function", "Collection"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "EventsStored", "Unit": "Count"}, {"Name": "StoreLatency", "Unit": "Milliseconds"}])
        );
        assert_eq!(v["Function"], "receiver");
        assert_eq!(v["Collection"], "clockings");
        assert_eq!(v["EventsStored"], 3.0);
        assert!(v.get("Skipped").is_none(), "non-finite values are left out");
    }
}
