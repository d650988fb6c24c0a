//! Moto, the Protime simulator, a receiver behind HTTP and a renewer, wired together.

use crate::{put_secret, simulator, unique, ReceiverFixture, ReceiverServer};
use std::collections::HashMap;
use std::time::Duration;

/// Moto, the simulator, a warm receiver behind HTTP, and a renewer, all wired together.
pub struct Stack {
    pub receiver: ReceiverFixture,
    pub server: ReceiverServer,
    pub simulator: simulator::Simulator,
    pub renewer_config: protime_webhooks::config::RenewerConfig,
    pub credentials_secret: String,
}

impl Stack {
    pub async fn start(collections: &[&str], simulator: simulator::SimulatorConfig) -> Stack {
        let receiver = ReceiverFixture::new("unused-initial-key").await;
        let server = ReceiverServer::start(std::sync::Arc::new(protime_webhooks::receiver::AwsReceiver::from_config(
            &protime_webhooks::config::ReceiverConfig::new(receiver.table.clone(), receiver.prefix.clone()),
            &receiver.config,
        )))
        .await;
        let simulator = simulator::Simulator::start(simulator).await;
        let credentials_secret = unique("protime-credentials");
        put_secret(&receiver.config, &credentials_secret, &simulator.credentials_json()).await;
        let vars: HashMap<&str, String> = HashMap::from([
            ("TABLE_NAME", receiver.table.clone()),
            ("SIGNING_KEY_SECRET_PREFIX", receiver.prefix.clone()),
            ("PROTIME_CREDENTIALS_SECRET", credentials_secret.clone()),
            ("DESTINATION_BASE_URL", server.base_url()),
            ("COLLECTIONS", collections.join(",")),
            ("PROTIME_API_BASE_URL", simulator.api_base_url()),
            ("PROTIME_TOKEN_URL", simulator.token_url()),
            ("PROTIME_USER_AGENT_COMPANY", "Test Company".into()),
        ]);
        let renewer_config =
            protime_webhooks::config::RenewerConfig::from_lookup(|k| vars.get(k).cloned()).expect("renewer config");
        Stack { receiver, server, simulator, renewer_config, credentials_secret }
    }

    /// A renewer (as the Lambda builds it) with short retry delays for tests.
    pub fn renewer(&self) -> protime_webhooks::renewer::AwsRenewer {
        let mut renewer =
            protime_webhooks::renewer::AwsRenewer::from_config(self.renewer_config.clone(), &self.receiver.config);
        fast_retries(&mut renewer.protime.options);
        renewer
    }

    /// One renewer run at the simulator's current time.
    pub async fn renew(&self) -> protime_webhooks::renewer::RunReport {
        self.renewer().run(self.simulator.now()).await.expect("renewer run")
    }

    /// The key stored in Secrets Manager (AWSCURRENT) for a collection.
    pub async fn stored_key(&self, collection: &str) -> Option<String> {
        aws_sdk_secretsmanager::Client::new(&self.receiver.config)
            .get_secret_value()
            .secret_id(format!("{}{collection}", self.receiver.prefix))
            .version_stage("AWSCURRENT")
            .send()
            .await
            .ok()
            .and_then(|s| s.secret_string)
    }
}

/// Retry delays short enough for tests, still bounded.
pub fn fast_retries(options: &mut protime_webhooks::protime::client::ClientOptions) {
    options.retry = protime_webhooks::protime::RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(20),
    };
    options.request_timeout = Duration::from_secs(2);
}
