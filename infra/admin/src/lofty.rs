//! `leadhub-admin lofty webhooks subscribe|list|delete DESTINATION`: a Lofty destination's webhook
//! subscriptions (seed 004, 5.12), managed through Lofty's API with the destination's own credentials.
//!
//! `subscribe` registers the hub's intake URL (`{hub.public_base_url}/v1/lofty/{destination}/{token}`,
//! [`leadhub::connectors::lofty::webhooks`]) for the Lead Information and Lead Activity lists (or those
//! given with `--list`), skipping a list the URL is already subscribed to; `list` shows the account's
//! subscriptions; `delete` removes the hub's own (or the one `--subscribe-id` names).
//!
//! Each command reads the hub's configuration (`--config`, its `env:` references resolved from the
//! environment, as the functions do): the destination (Lofty's URL, `access_token`, `vendor_key`, timeout),
//! `hub.public_base_url` (or `--base-url` / `LEADHUB_PUBLIC_BASE_URL`, as the functions read it) and
//! `hub.callback_key` (the token). Nothing printed holds a credential or a token: the intake URL is shown
//! as "this hub", another subscriber's URL by its origin only.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use leadhub::config::Env;
use leadhub::connectors::lofty::webhooks::{
    self, intake_url, read_subscription, read_subscriptions, Subscription, WebhookList,
};
use leadhub::connectors::{BuildError, BuyerRequest, BuyerResponse, Connector, Destination};
use leadhub::settings::Config;
use leadhub::transport::{Transport, TransportError};

#[derive(Subcommand)]
pub enum LoftyCommand {
    /// Webhook subscriptions of a Lofty destination.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe the hub's intake URL to the destination's Lead Information and Lead Activity events
    /// (a list it is already subscribed to is left as it is).
    Subscribe {
        destination: String,
        #[command(flatten)]
        hub: HubArgs,
        /// Only this list (lead-information or lead-activity); repeat for both. Default: both.
        #[arg(long = "list")]
        lists: Vec<WebhookList>,
        /// Notifications per 30 minutes Lofty may send (1 to 5000; default: Lofty's).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=5000))]
        limit: Option<i64>,
    },
    /// List the destination's subscriptions (the hub's own marked as "this hub").
    List {
        destination: String,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Delete the hub's subscriptions of the destination, or only the one --subscribe-id names.
    Delete {
        destination: String,
        #[command(flatten)]
        hub: HubArgs,
        #[arg(long)]
        subscribe_id: Option<i64>,
    },
}

/// Where the hub's configuration comes from.
#[derive(clap::Args)]
pub struct HubArgs {
    /// The hub's configuration document (its env: references are read from the environment).
    #[arg(long)]
    pub config: PathBuf,
    /// The hub's public base URL, over hub.public_base_url (as the functions read it).
    #[arg(long, env = "LEADHUB_PUBLIC_BASE_URL")]
    pub base_url: Option<String>,
}

impl HubArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let document = std::fs::read_to_string(&self.config)
            .with_context(|| format!("cannot read {}", self.config.display()))?;
        let config = Config::from_toml(&document, &Env)
            .with_context(|| format!("{}", self.config.display()))?;
        Ok(match &self.base_url {
            Some(url) => config.with_public_base_url(url)?,
            None => config,
        })
    }
}

/// A subscription of the destination's account, as `list` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub subscription: Subscription,
    /// It posts to this hub's intake URL for the destination.
    pub ours: bool,
}

/// What `subscribe` did for one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscribed {
    New(Subscription),
    /// The intake URL was already subscribed to the list: nothing was sent.
    Already(Subscription),
}

/// The configured Lofty destination `id`.
fn lofty_destination<'a>(config: &'a Config, id: &str) -> anyhow::Result<&'a Destination> {
    let destination = config
        .destination(id)
        .ok_or_else(|| anyhow!("no destination `{id}` in the configuration"))?;
    if !matches!(destination.connector, Connector::Lofty(_)) {
        bail!("destination `{id}` is not a Lofty destination (kind = \"lofty\")");
    }
    Ok(destination)
}

/// Send one subscription call; its answer when Lofty took it.
async fn call(
    transport: &dyn Transport,
    destination: &Destination,
    request: Result<BuyerRequest, BuildError>,
) -> anyhow::Result<BuyerResponse> {
    let request = request.map_err(|error| anyhow!("destination `{}`: {error}", destination.id))?;
    let response = transport
        .send(&request, destination.timeout)
        .await
        .map_err(|error| match error {
            TransportError::Timeout(_) => anyhow!(
                "Lofty did not answer within {} ms",
                destination.timeout.as_millis()
            ),
            TransportError::Unreachable => anyhow!("Lofty could not be reached"),
        })?;
    match webhooks::failure(&response) {
        None => Ok(response),
        Some(problem) => Err(anyhow!(problem)),
    }
}

async fn subscriptions(
    transport: &dyn Transport,
    destination: &Destination,
) -> anyhow::Result<Vec<Subscription>> {
    let response = call(transport, destination, webhooks::list(destination)).await?;
    read_subscriptions(&response.body)
        .ok_or_else(|| anyhow!("Lofty's list of webhooks could not be read"))
}

/// Subscribe the hub's intake URL for `destination` to `lists` (all the hub takes when empty).
pub async fn subscribe(
    config: &Config,
    destination: &str,
    lists: &[WebhookList],
    limit: Option<i64>,
    transport: &dyn Transport,
) -> anyhow::Result<Vec<(WebhookList, Subscribed)>> {
    let destination = lofty_destination(config, destination)?;
    let url = intake_url(
        &config.public_base_url,
        &config.callback_signer,
        &destination.id,
    );
    let existing = subscriptions(transport, destination).await?;
    let mut lists = if lists.is_empty() {
        WebhookList::ALL.to_vec()
    } else {
        lists.to_vec()
    };
    lists.sort();
    lists.dedup();
    let mut done = Vec::new();
    for list in lists {
        if let Some(already) = existing
            .iter()
            .find(|s| s.list_id == list.id() && s.callback_url == url)
        {
            done.push((list, Subscribed::Already(already.clone())));
            continue;
        }
        let response = call(
            transport,
            destination,
            webhooks::subscribe(destination, list, &url, limit),
        )
        .await
        .with_context(|| format!("subscribing to {}", list.name()))?;
        let made = read_subscription(&response.body).ok_or_else(|| {
            anyhow!(
                "Lofty took the {} subscription but its answer could not be read",
                list.name()
            )
        })?;
        done.push((list, Subscribed::New(made)));
    }
    Ok(done)
}

/// The destination's subscriptions.
pub async fn list(
    config: &Config,
    destination: &str,
    transport: &dyn Transport,
) -> anyhow::Result<Vec<Listed>> {
    let destination = lofty_destination(config, destination)?;
    let url = intake_url(
        &config.public_base_url,
        &config.callback_signer,
        &destination.id,
    );
    Ok(subscriptions(transport, destination)
        .await?
        .into_iter()
        .map(|subscription| Listed {
            ours: subscription.callback_url == url,
            subscription,
        })
        .collect())
}

/// Delete the hub's subscriptions of `destination` (or the one `subscribe_id` names); the ids deleted.
pub async fn delete(
    config: &Config,
    destination: &str,
    subscribe_id: Option<i64>,
    transport: &dyn Transport,
) -> anyhow::Result<Vec<i64>> {
    let ids: Vec<i64> = match subscribe_id {
        Some(id) => vec![id],
        None => list(config, destination, transport)
            .await?
            .into_iter()
            .filter(|listed| listed.ours)
            .map(|listed| listed.subscription.subscribe_id)
            .collect(),
    };
    let destination = lofty_destination(config, destination)?;
    for id in &ids {
        call(transport, destination, webhooks::delete(destination, *id))
            .await
            .with_context(|| format!("deleting subscription {id}"))?;
    }
    Ok(ids)
}

/// A list id's name.
fn list_name(id: i64) -> String {
    match WebhookList::from_id(id) {
        Some(list) => list.name().to_owned(),
        None => format!("list {id}"),
    }
}

/// Where a subscription posts, as it may be printed: this hub, or another URL's origin only (its path may
/// hold a token).
pub fn shown_target(listed: &Listed) -> String {
    if listed.ours {
        return "this hub".to_owned();
    }
    match reqwest::Url::parse(&listed.subscription.callback_url) {
        Ok(url) => format!("elsewhere: {}", url.origin().ascii_serialization()),
        Err(_) => "elsewhere".to_owned(),
    }
}

/// Run `command`, printing what was done.
pub async fn run(command: LoftyCommand, transport: &dyn Transport) -> anyhow::Result<()> {
    let LoftyCommand::Webhooks(command) = command;
    match command {
        WebhooksCommand::Subscribe {
            destination,
            hub,
            lists,
            limit,
        } => {
            let config = hub.load()?;
            for (list, outcome) in
                subscribe(&config, &destination, &lists, limit, transport).await?
            {
                match outcome {
                    Subscribed::New(made) => println!(
                        "{destination}: subscribed to {} (subscribeId {})",
                        list.name(),
                        made.subscribe_id
                    ),
                    Subscribed::Already(existing) => println!(
                        "{destination}: already subscribed to {} (subscribeId {})",
                        list.name(),
                        existing.subscribe_id
                    ),
                }
            }
        }
        WebhooksCommand::List { destination, hub } => {
            let config = hub.load()?;
            let listed = list(&config, &destination, transport).await?;
            if listed.is_empty() {
                println!("{destination}: no webhook subscriptions");
            }
            for entry in &listed {
                println!(
                    "{destination}: subscribeId {} {} -> {}",
                    entry.subscription.subscribe_id,
                    list_name(entry.subscription.list_id),
                    shown_target(entry)
                );
            }
        }
        WebhooksCommand::Delete {
            destination,
            hub,
            subscribe_id,
        } => {
            let config = hub.load()?;
            let deleted = delete(&config, &destination, subscribe_id, transport).await?;
            if deleted.is_empty() {
                println!("{destination}: the hub had no subscription to delete");
            }
            for id in deleted {
                println!("{destination}: deleted subscribeId {id}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(url: &str, ours: bool) -> Listed {
        Listed {
            subscription: Subscription {
                subscribe_id: 1,
                list_id: 3,
                callback_url: url.to_owned(),
            },
            ours,
        }
    }

    #[test]
    fn a_subscriptions_target_is_printed_without_its_path() {
        assert_eq!(
            shown_target(&listed("https://hub.example/v1/lofty/lofty/SECRET", true)),
            "this hub"
        );
        let other = shown_target(&listed("https://crm.example:8443/hooks/SECRET?k=v", false));
        assert_eq!(other, "elsewhere: https://crm.example:8443");
        assert_eq!(
            shown_target(&listed("not a url SECRET", false)),
            "elsewhere"
        );
        assert_eq!(list_name(3), "lead-activity");
        assert_eq!(list_name(4), "list 4");
    }
}
