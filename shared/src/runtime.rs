//! Cold start on AWS: read the environment once, build the SDK clients once, load and check the config.
//! Every function's `main` calls [`aws_dependencies`] and fails fast, naming what is wrong.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Env;
use crate::live_config::LiveConfig;
use crate::queue::sqs::SqsQueue;
use crate::settings::Config;
use crate::store::dynamodb::DynamoStore;
use crate::store::LeadStore;

/// What the functions share on AWS.
pub struct AwsDependencies {
    /// The configuration in effect: re-read from the table every `hub.config_refresh_secs` (a document
    /// that fails the check is logged and not applied), or fixed when read from `LEADHUB_CONFIG_FILE`.
    pub config: LiveConfig,
    pub store: Arc<DynamoStore>,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsDependencies {
    /// The queue whose URL is in environment variable `variable`.
    pub fn queue(&self, variable: &str) -> anyhow::Result<Arc<SqsQueue>> {
        let url = required_env(variable)?;
        Ok(Arc::new(SqsQueue::new(self.sqs.clone(), url)))
    }
}

fn required_env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("environment variable {name} is not set"))
}

/// Time limits on every DynamoDB and SQS call (the SDK sets none by default). The functions make only
/// single-item calls and sends, which answer in milliseconds; a hung connection must fail in time for the
/// handler to act on it within its own Lambda timeout. Ingest, the tightest (10 s), makes three calls in a
/// row on one lead (the sealed SSN's put when it carries one, the store, the send): 3 x 3 s. When the send
/// failed, the clean-up after it (the discard; for a sealed SSN a read and a delete too) runs against a
/// DynamoDB that just answered; should the function time out in it all the same, the lead stays `received`
/// (a replay with its Idempotency-Key queues it again) and the sealed SSN expires with its TTL.
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_millis(1500))
        .operation_timeout(std::time::Duration::from_secs(3))
        .build()
}

/// The HTTPS client of every AWS SDK client the hub makes: hyper with rustls on *ring*, the crypto library
/// reqwest (the hub's own outbound HTTP) links already, so each bootstrap carries one TLS stack instead of
/// two (the SDK's `default-https-client` feature adds rustls on aws-lc-rs; without it and without aws-config's
/// `sso` and `credentials-process`, dispatch went from 20.0 to 16.3 MiB, 7.4 to 6.1 MiB zipped). Otherwise
/// as that default client: the connector settings and sleep of the client it serves, the proxy from the
/// environment (`HTTPS_PROXY` etc.), the system's trusted roots.
pub fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// `aws_config::defaults` as every part of the hub loads it: the latest behavior version and
/// [`sdk_http_client`]. (Without the SDK's `default-https-client` feature a loader without an HTTP client
/// would build clients that cannot send.)
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(sdk_http_client())
}

/// Build the clients and load the configuration: from `LEADHUB_CONFIG_FILE` when set (fixed), else from
/// the table's `CONFIG#active` item (re-read by warm functions every `hub.config_refresh_secs`).
/// `LEADHUB_PUBLIC_BASE_URL` overrides `hub.public_base_url`.
pub async fn aws_dependencies() -> anyhow::Result<AwsDependencies> {
    let sdk = sdk_defaults().timeout_config(sdk_timeouts()).load().await;
    let table = required_env("LEADHUB_TABLE")?;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let file = std::env::var("LEADHUB_CONFIG_FILE")
        .ok()
        .filter(|v| !v.is_empty());
    let document = match &file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read LEADHUB_CONFIG_FILE {path}"))?,
        None => store
            .get_config_document()
            .await
            .context("cannot read the configuration from the table")?
            .context("no configuration: store one with `leadhub-admin config put` or set LEADHUB_CONFIG_FILE")?,
    };
    let public_base_url = std::env::var("LEADHUB_PUBLIC_BASE_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let mut config = Config::from_toml(&document, &Env)?;
    if let Some(url) = &public_base_url {
        config = config.with_public_base_url(url)?;
    }
    let config = match file {
        Some(_) => LiveConfig::fixed(Arc::new(config)),
        None => LiveConfig::stored(
            Arc::new(config),
            document,
            store.clone(),
            Arc::new(Env),
            public_base_url,
        ),
    };
    Ok(AwsDependencies {
        config,
        store,
        sqs: aws_sdk_sqs::Client::new(&sdk),
    })
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::result::SdkError;

    /// The clients built from [`super::sdk_defaults`] can send: a call to a closed loopback port fails
    /// to connect (a dispatch failure), not for want of an HTTP client (a construction failure, which is
    /// what a loader without one gives now that the SDK's default client is not linked).
    #[tokio::test]
    async fn sdk_clients_send_through_the_hub_http_client() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let sdk = super::sdk_defaults()
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let error = aws_sdk_dynamodb::Client::new(&sdk)
            .list_tables()
            .send()
            .await
            .expect_err("nothing listens there");
        assert!(
            matches!(&error, SdkError::DispatchFailure(failure) if failure.is_io()),
            "{error:?}"
        );
    }
}
