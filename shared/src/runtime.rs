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

/// Which root certificates the SDK's HTTPS client trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's store, as the SDK's default client does (rustls-native-certs: on Debian the bundle
    /// and every file of /etc/ssl/certs, read and parsed when the first client is built). For the
    /// operators' tools and the local stack, where a proxy or a private CA may be in the way.
    Native,
    /// Mozilla's roots, compiled in (webpki-root-certs): the set reqwest already trusts for the hub's
    /// outbound HTTP, the same on every host, and no files to read. For the functions on Lambda, which
    /// speak only to AWS's public endpoints. Reading the system store was the largest part of a
    /// function's cold start (BENCHMARKS.md, Cold start).
    Mozilla,
}

/// Mozilla's roots as one PEM bundle (the form the SDK's trust store takes); the trust store keeps it.
fn mozilla_pem_bundle() -> Vec<u8> {
    use base64::Engine;
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let text = base64::engine::general_purpose::STANDARD.encode(certificate.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in text.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// The trust store of Mozilla's roots, made when the first connector is built (the first SDK call).
fn mozilla_tls_context() -> Option<&'static aws_smithy_http_client::tls::TlsContext> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    static CONTEXT: std::sync::OnceLock<Option<TlsContext>> = std::sync::OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let trust = TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(mozilla_pem_bundle());
            match TlsContext::builder().with_trust_store(trust).build() {
                Ok(context) => Some(context),
                Err(error) => {
                    tracing::warn!(%error, "Mozilla's roots could not be set: the SDK trusts the system's");
                    None
                }
            }
        })
        .as_ref()
}

/// The HTTPS client of every AWS SDK client the hub makes: hyper with rustls on *ring*, the crypto library
/// reqwest (the hub's own outbound HTTP) links already, so each bootstrap carries one TLS stack instead of
/// two (the SDK's `default-https-client` feature adds rustls on aws-lc-rs; without it and without aws-config's
/// `sso` and `credentials-process`, dispatch went from 20.0 to 16.3 MiB, 7.4 to 6.1 MiB zipped). Otherwise
/// as that default client: the connector settings and sleep of the client it serves, the proxy from the
/// environment (`HTTPS_PROXY` etc.). It trusts `roots`, and builds its connector (and so its trust store)
/// on the first call rather than when a client is made ([`ConnectOnFirstCall`]).
pub fn sdk_http_client(roots: Roots) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    let hyper = Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        if roots == Roots::Mozilla {
            if let Some(context) = mozilla_tls_context() {
                connector.set_tls_context(context.clone());
            }
        }
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    aws_smithy_runtime_api::client::http::SharedHttpClient::new(ConnectOnFirstCall(hyper))
}

/// The SDK's hyper client without its check at client construction: that check builds a connector and
/// drops it, only to read the trust store early, and it runs for every client made (DynamoDB, SQS), each
/// time decoding and parsing every root again, all before a function can ask for work. Here the one
/// connector each timeout setting needs is built on the first call that needs it, and kept (the hyper
/// client caches it).
#[derive(Debug)]
struct ConnectOnFirstCall(aws_smithy_runtime_api::client::http::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for ConnectOnFirstCall {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// `aws_config::defaults` as the operators' tools and the local stack load it: the latest behavior
/// version and [`sdk_http_client`] with the system's roots. (Without the SDK's `default-https-client`
/// feature a loader without an HTTP client would build clients that cannot send.)
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sdk_http_client(Roots::Native))
}

/// The loader the functions use on Lambda: [`sdk_timeouts`], Mozilla's roots, and where the environment
/// names them (Lambda always does), the credentials and region taken from it directly. The default
/// chains would pick the same ones (the environment comes first in each), but they are built whole
/// first: the web-identity provider makes an STS client, whose check builds an HTTPS connector and with
/// it the trust store, and the region chain builds an IMDS client, all before the function can ask
/// for work. Without them in the environment, the default chains.
pub fn lambda_loader() -> aws_config::ConfigLoader {
    lambda_loader_with(|name| std::env::var(name).ok())
}

fn lambda_loader_with(var: impl Fn(&str) -> Option<String>) -> aws_config::ConfigLoader {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sdk_http_client(Roots::Mozilla))
        .timeout_config(sdk_timeouts());
    if let (Some(key), Some(secret)) = (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY")) {
        // As the environment provider reads them; Lambda's stay valid for the execution environment's life.
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key,
            secret,
            set("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        ));
    }
    if let Some(region) = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION")) {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader
}

/// Build the clients and load the configuration: from `LEADHUB_CONFIG_FILE` when set (fixed), else from
/// the table's `CONFIG#active` item (re-read by warm functions every `hub.config_refresh_secs`).
/// `LEADHUB_PUBLIC_BASE_URL` overrides `hub.public_base_url`.
pub async fn aws_dependencies() -> anyhow::Result<AwsDependencies> {
    let sdk = lambda_loader().load().await;
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

    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// A DynamoDB call through `loader` to a closed loopback port: it must fail to connect (a dispatch
    /// failure), not for want of an HTTP client (a construction failure, which is what a loader without
    /// one gives now that the SDK's default client is not linked). Building the connector builds its
    /// trust store, so a root the TLS library refused would panic here.
    async fn assert_sends(loader: aws_config::ConfigLoader) {
        let sdk = loader
            .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
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

    #[tokio::test]
    async fn sdk_clients_send_through_the_hub_http_client() {
        assert_sends(super::sdk_defaults()).await;
    }

    #[tokio::test]
    async fn sdk_clients_send_with_mozillas_roots() {
        assert_sends(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(super::sdk_http_client(super::Roots::Mozilla)),
        )
        .await;
    }

    /// Every root of webpki-root-certs goes into the bundle, and comes back out of it byte for byte.
    #[test]
    fn the_mozilla_bundle_holds_every_root() {
        use base64::Engine;
        let bundle = super::mozilla_pem_bundle();
        let bundle = std::str::from_utf8(&bundle).expect("PEM is text");
        let decoded: Vec<Vec<u8>> = bundle
            .split("-----END CERTIFICATE-----\n")
            .filter(|block| !block.is_empty())
            .map(|block| {
                let body = block
                    .strip_prefix("-----BEGIN CERTIFICATE-----\n")
                    .expect("each block opens with the PEM header");
                assert!(body.lines().all(|line| line.len() <= 64), "{body}");
                base64::engine::general_purpose::STANDARD
                    .decode(body.replace('\n', ""))
                    .expect("base64")
            })
            .collect();
        let expected: Vec<Vec<u8>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        assert!(expected.len() > 100, "{}", expected.len());
        assert_eq!(decoded, expected);
    }

    /// With credentials and a region in the environment, the functions' loader takes them as they are
    /// (no provider chain to build); without, it leaves both to the default chains.
    #[tokio::test]
    async fn the_lambda_loader_takes_credentials_and_region_from_the_environment() {
        use aws_sdk_dynamodb::config::ProvideCredentials;
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIDLAMBDA"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_REGION", "eu-west-2"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ];
        let lookup = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        let sdk = super::lambda_loader_with(lookup).load().await;
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-2"));
        let credentials = sdk
            .credentials_provider()
            .expect("a provider")
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(credentials.access_key_id(), "AKIDLAMBDA");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));

        let only_default_region =
            |name: &str| (name == "AWS_DEFAULT_REGION").then(|| "ap-south-1".to_owned());
        let sdk = super::lambda_loader_with(only_default_region).load().await;
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("ap-south-1"));
        assert!(sdk.credentials_provider().is_some());
    }
}
