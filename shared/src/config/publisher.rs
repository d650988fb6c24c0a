//! The publisher's settings.

use super::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// `EVENT_BUS_NAME`: the bus the change events go to.
    pub event_bus_name: String,
    /// `PUBLISH_UNCHANGED`: publish a new version whose data equals the previous one's too.
    pub publish_unchanged: bool,
    /// `METRICS_NAMESPACE`, `DETAILED_METRICS`
    pub metrics: crate::observability::metrics::Metrics,
}

impl PublisherConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(PublisherConfig {
            event_bus_name: env.required("EVENT_BUS_NAME")?,
            publish_unchanged: env.flag("PUBLISH_UNCHANGED", false)?,
            metrics: env.metrics()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_is_required_and_unchanged_versions_are_suppressed_by_default() {
        let c = PublisherConfig::from_lookup(crate::config::lookup_from(&[("EVENT_BUS_NAME", "changes")])).unwrap();
        assert_eq!((c.event_bus_name.as_str(), c.publish_unchanged), ("changes", false));
        assert_eq!(c.metrics, crate::observability::metrics::Metrics::new("ProtimeWebhooks"));
        let all = [("EVENT_BUS_NAME", "changes"), ("PUBLISH_UNCHANGED", "true")];
        assert!(PublisherConfig::from_lookup(crate::config::lookup_from(&all)).unwrap().publish_unchanged);
        assert_eq!(PublisherConfig::from_lookup(|_| None), Err(ConfigError::Missing("EVENT_BUS_NAME")));
    }
}
