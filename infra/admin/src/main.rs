//! `leadhub-admin`: operator commands.
//!
//! ```text
//! leadhub-admin partner-secret                 issue a partner secret and print its stored hash
//! leadhub-admin hash-secret SECRET             the stored hash of an existing secret
//! leadhub-admin config check FILE              check a configuration (secrets resolved from the environment)
//! leadhub-admin config put FILE TABLE          check it, then store it as the table's active configuration
//! leadhub-admin bootstrap PREFIX               create PREFIX-leads and the PREFIX-validate / PREFIX-dispatch
//!                                              queues (with dead-letter queues) and print their env variables
//! ```
//! AWS commands use the SDK's usual settings (`AWS_ENDPOINT_URL` for moto, `AWS_REGION`, credentials).

use anyhow::{bail, Context};
use leadhub::config::{Config, Env};
use leadhub::crypto::SecretHash;
use leadhub::store::LeadStore;

const USAGE: &str = "usage: leadhub-admin partner-secret | hash-secret SECRET | config check FILE | config put FILE TABLE | bootstrap PREFIX";

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
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["partner-secret"] => {
            let bytes: [u8; 24] = rand::random();
            let secret = format!("sk_{}", hex::encode(bytes));
            println!("secret (give to the partner, then forget): {secret}");
            println!(
                "secret_hash (put in the configuration):    {}",
                SecretHash::of(&secret).to_stored()
            );
        }
        ["hash-secret", secret] => println!("{}", SecretHash::of(secret).to_stored()),
        ["config", "check", path] => {
            check(path)?;
        }
        ["config", "put", path, table] => {
            let document = check(path)?;
            let store = leadhub::store::dynamodb::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk().await),
                *table,
            );
            store.put_config_document(&document).await?;
            println!("stored as the active configuration of table {table}");
        }
        ["bootstrap", prefix] => {
            let sdk = sdk().await;
            let table = format!("{prefix}-leads");
            leadhub::store::dynamodb::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
                .await?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let (validate, _) = leadhub::queue::sqs::create_queue_with_dead_letter(
                &sqs,
                &format!("{prefix}-validate"),
                180,
                5,
            )
            .await?;
            let (dispatch, _) = leadhub::queue::sqs::create_queue_with_dead_letter(
                &sqs,
                &format!("{prefix}-dispatch"),
                180,
                5,
            )
            .await?;
            println!("export LEADHUB_TABLE={table}");
            println!("export LEADHUB_VALIDATE_QUEUE_URL={validate}");
            println!("export LEADHUB_DISPATCH_QUEUE_URL={dispatch}");
        }
        _ => bail!(USAGE),
    }
    Ok(())
}
