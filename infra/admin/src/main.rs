//! `leadhub-admin`: operator commands (`leadhub-admin --help` lists them).
//!
//! AWS commands use the SDK's usual settings (`AWS_ENDPOINT_URL` for moto, `AWS_REGION`, credentials).

mod callbacks;
mod deliveries;
mod leadsafe;
mod notifications;
mod pump;
mod returns;
mod suppression;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use leadhub::config::Env;
use leadhub::crypto::SecretHash;
use leadhub::settings::Config;
use leadhub::store::LeadStore;

#[derive(Parser)]
#[command(name = "leadhub-admin", about = "leadhub operator commands", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue a partner secret and print its stored hash.
    PartnerSecret,
    /// The stored hash of an existing secret.
    HashSecret { secret: String },
    /// Check or store the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create (or reuse) PREFIX-leads and the PREFIX-validate / PREFIX-dispatch queues with their
    /// dead-letter queues, and print their environment variables.
    Bootstrap {
        prefix: String,
        /// Visibility timeout of both queues in seconds (default: the template's, 180 for validate and
        /// 360 for dispatch).
        #[arg(long)]
        visibility_timeout: Option<u32>,
        /// Receives before a message moves to its dead-letter queue (the template's is 5).
        #[arg(long, default_value_t = 5)]
        max_receive_count: u32,
    },
    /// List dead deliveries, or replay one.
    #[command(subcommand)]
    Deliveries(deliveries::DeliveriesCommand),
    /// Partner notifications that failed (list, replay) and endpoints disabled by a 410 (list, enable).
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// List buyer callbacks whose body was not a verdict, kept for the operator.
    #[command(subcommand)]
    Callbacks(callbacks::CallbacksCommand),
    /// Each destination's return rate (returned / accepted deliveries).
    #[command(subcommand)]
    Returns(returns::ReturnsCommand),
    /// Import, count or remove the suppression list (values hashed under LEADHUB_HASH_KEY, the secret of
    /// the functions' [hub] hash_key).
    #[command(subcommand)]
    Suppression(suppression::SuppressionCommand),
    /// Report consumer statuses to LeadSafe from a file, send the ones left unsent, or export them as
    /// LeadSafe's SFTP CSV (--config: the hub's configuration, for [screening.leadsafe] and hub.ssn_key).
    #[command(subcommand, name = "leadsafe")]
    LeadSafe(leadsafe::LeadSafeCommand),
    /// A Lofty destination's webhook subscriptions (subscribe, list, delete), through Lofty's API with the
    /// destination's credentials (--config: the hub's configuration).
    #[command(subcommand)]
    Lofty(leadhub_admin::lofty::LoftyCommand),
    /// Play Lambda's event source mappings locally: poll the validate and dispatch queues and invoke the
    /// functions through `cargo lambda watch` with SQS events, deleting what did not fail.
    Pump {
        /// The validate queue (bootstrap exports LEADHUB_VALIDATE_QUEUE_URL).
        #[arg(long, env = "LEADHUB_VALIDATE_QUEUE_URL")]
        validate_queue: String,
        /// The dispatch queue (bootstrap exports LEADHUB_DISPATCH_QUEUE_URL).
        #[arg(long, env = "LEADHUB_DISPATCH_QUEUE_URL")]
        dispatch_queue: String,
        /// Where `cargo lambda watch` serves the Lambda invoke API.
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        invoke_url: String,
        /// How long one invocation may take, in seconds (the first one waits for cargo lambda to build
        /// the function).
        #[arg(long, default_value_t = 900)]
        invoke_timeout: u64,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file (secrets resolved from the environment).
    Check { file: String },
    /// Check it, then store it as the table's active configuration.
    Put { file: String, table: String },
}

fn check(path: &str) -> anyhow::Result<String> {
    let document = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let config = Config::from_toml(&document, &Env)?;
    println!(
        "{path}: valid ({} partners, {} destinations)",
        config.partners.len(),
        config.destinations.len()
    );
    Ok(document)
}

async fn sdk() -> aws_config::SdkConfig {
    leadhub::runtime::sdk_defaults().load().await
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::PartnerSecret => {
            let bytes: [u8; 24] = rand::random();
            let secret = format!("sk_{}", hex::encode(bytes));
            println!("secret (give to the partner, then forget): {secret}");
            println!(
                "secret_hash (put in the configuration):    {}",
                SecretHash::of(&secret).to_stored()
            );
        }
        Command::HashSecret { secret } => println!("{}", SecretHash::of(&secret).to_stored()),
        Command::Config(ConfigCommand::Check { file }) => {
            check(&file)?;
        }
        Command::Config(ConfigCommand::Put { file, table }) => {
            let document = check(&file)?;
            let store = leadhub::store::dynamodb::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk().await),
                &table,
            );
            store.put_config_document(&document).await?;
            println!("stored as the active configuration of table {table}");
        }
        Command::Bootstrap {
            prefix,
            visibility_timeout,
            max_receive_count,
        } => {
            let sdk = sdk().await;
            let table = format!("{prefix}-leads");
            leadhub::store::dynamodb::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
                .await?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            // The template's visibility timeouts: six times each consumer's Lambda timeout.
            let (validate, _) = leadhub::queue::sqs::create_queue_with_dead_letter(
                &sqs,
                &format!("{prefix}-validate"),
                visibility_timeout.unwrap_or(180),
                max_receive_count,
            )
            .await?;
            let (dispatch, _) = leadhub::queue::sqs::create_queue_with_dead_letter(
                &sqs,
                &format!("{prefix}-dispatch"),
                visibility_timeout.unwrap_or(360),
                max_receive_count,
            )
            .await?;
            println!("export LEADHUB_TABLE={table}");
            println!("export LEADHUB_VALIDATE_QUEUE_URL={validate}");
            println!("export LEADHUB_DISPATCH_QUEUE_URL={dispatch}");
        }
        Command::Deliveries(command) => deliveries::run(command, &sdk().await).await?,
        Command::Notifications(command) => {
            // Some could not be replayed (and were reported); the rest was done.
            if !notifications::run(command, &sdk().await).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Callbacks(command) => callbacks::run(command, &sdk().await).await?,
        Command::Returns(command) => returns::run(command, &sdk().await).await?,
        Command::Suppression(command) => {
            // Rows were refused (and reported); the good ones were done.
            if !suppression::run(command, &sdk().await).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::LeadSafe(command) => {
            // Rows were refused or reports left unsent (and reported); the rest was done.
            if !leadsafe::run(command, &sdk().await).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Lofty(command) => {
            leadhub_admin::lofty::run(command, &leadhub::transport::ReqwestTransport::new()).await?
        }
        Command::Pump {
            validate_queue,
            dispatch_queue,
            invoke_url,
            invoke_timeout,
        } => {
            let sdk = sdk().await;
            let region = sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".to_owned());
            let invoker = pump::Invoker::new(&invoke_url, Duration::from_secs(invoke_timeout))?;
            pump::run(
                aws_sdk_sqs::Client::new(&sdk),
                region,
                invoker,
                vec![
                    pump::Mapping::new(pump::VALIDATE, validate_queue),
                    pump::Mapping::new(pump::DISPATCH, dispatch_queue),
                ],
            )
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_bad_document_is_refused_before_anything_is_stored() {
        let dir = std::env::temp_dir().join(format!("leadhub-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            "[hub]\npublic_base_url = \"https://hub.example\"\nhash_key = \"env:X\"\ncallback_key = \"env:Y\"\nconfig_refresh_secs = 0\n",
        )
        .expect("write");
        // `config put` stores only what `check` returns.
        let error = check(path.to_str().expect("path")).expect_err("refused");
        assert!(error.to_string().contains("hub."), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
