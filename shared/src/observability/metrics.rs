//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per document, which
//! CloudWatch Logs turns into metrics without any API call or extra permission.
//!
//! Namespace `METRICS_NAMESPACE` (default `ProtimeWebhooks`). CloudWatch bills each distinct
//! metric (name and dimension values) in every hour it receives a value, so by default a
//! document publishes at the function level only (dimension `Function`: `receiver`, `renewer`,
//! `syncer` or `publisher`), and a count of zero is left out (an alarm on a count treats
//! missing data as zero). The finer values (`Collection`, `Reason`, `Kind`, `Outcome`) are
//! properties of the same log line, for Logs Insights; `DETAILED_METRICS=true` also publishes
//! them as dimensions, for those who choose to pay for them.

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

/// What a function publishes: `METRICS_NAMESPACE` and `DETAILED_METRICS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub namespace: String,
    /// Also publish each finer dimension (`Function` + it): a metric per collection, reason,
    /// kind or outcome, each billed.
    pub detailed: bool,
}

impl Metrics {
    /// Function-level metrics in `namespace` (the default).
    pub fn new(namespace: &str) -> Self {
        Metrics { namespace: namespace.to_owned(), detailed: false }
    }

    /// Function-level metrics and one per finer dimension value too.
    pub fn detailed(namespace: &str) -> Self {
        Metrics { namespace: namespace.to_owned(), detailed: true }
    }

    /// A document of `function`'s.
    pub fn doc(&self, function: &str) -> MetricDoc {
        MetricDoc {
            namespace: self.namespace.clone(),
            detailed: self.detailed,
            dimensions: vec![("Function", function.to_owned())],
            dimension_sets: vec![vec!["Function"]],
            metrics: Vec::new(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(DEFAULT_NAMESPACE)
    }
}

/// One EMF document under construction.
#[derive(Debug, Clone)]
pub struct MetricDoc {
    namespace: String,
    detailed: bool,
    dimensions: Vec<(&'static str, String)>,
    /// Which dimension combinations to publish, each a list of dimension names.
    dimension_sets: Vec<Vec<&'static str>>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

impl MetricDoc {
    /// Adds a finer value: a property of the log line, and when detailed also a dimension
    /// (published as `Function` + it, beside `Function` alone).
    pub fn dimension(mut self, name: &'static str, value: &str) -> Self {
        self.dimensions.push((name, value.to_owned()));
        if self.detailed {
            self.dimension_sets.push(vec!["Function", name]);
        }
        self
    }

    /// A value published whatever it is (a gauge an alarm reads every period).
    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        if value.is_finite() {
            self.metrics.push((name, unit, value));
        }
        self
    }

    /// A count, left out when zero: a metric is billed for each hour it receives a value.
    pub fn count(self, name: &'static str, value: u64) -> Self {
        if value == 0 {
            return self;
        }
        self.metric(name, Unit::Count, value as f64)
    }

    /// Whether the document publishes anything.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The metrics it publishes: (name, the dimension sets), for tests and tools.
    pub fn published(&self) -> Vec<(&'static str, Vec<Vec<&'static str>>)> {
        self.metrics.iter().map(|(name, _, _)| (*name, self.dimension_sets.clone())).collect()
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

    /// Writes the document as one line on stdout, where Lambda's log agent picks it up;
    /// nothing when it publishes nothing.
    pub fn emit(&self) {
        if self.is_empty() {
            return;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        println!("{}", self.to_json(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_follows_the_emf_specification() {
        let doc = Metrics::detailed("Ns")
            .doc("receiver")
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

    #[test]
    fn by_default_a_document_publishes_at_the_function_level_and_leaves_zero_counts_out() {
        let doc = Metrics::new("Ns")
            .doc("syncer")
            .dimension("Collection", "people")
            .count("SyncPages", 2)
            .count("DeltaExpired", 0);
        let v = doc.to_json(0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
        assert_eq!(v["Collection"], "people", "still a property of the line, for Logs Insights");
        assert_eq!(v["SyncPages"], 2.0);
        assert!(v.get("DeltaExpired").is_none());
        assert!(Metrics::new("Ns").doc("syncer").count("DeltaExpired", 0).is_empty());
    }
}
