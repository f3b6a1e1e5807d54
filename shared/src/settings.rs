//! The configuration the hub runs on: the document [`crate::config`] checks, with each destination's
//! buyer-API part checked by its connector ([`crate::connectors::Rules`]).
//!
//! This module only glues the two: `config` names no connector and the connectors import only `config`'s
//! types, so there is no cycle between them. Everything that loads or holds the hub's configuration names
//! [`Config`] (and [`Destination`]) from here.

use crate::config::{ConfigError, SecretSource};
use crate::connectors::Rules;

pub use crate::connectors::{Connector, ConnectorKind, Destination};

/// The hub's configuration, checked, its destinations' buyer APIs by their connectors' rules.
pub type Config = crate::config::Config<Connector>;

impl Config {
    /// Parse and check a TOML document, resolving secret references through `secrets`; every problem names
    /// its key ([`ConfigError`]).
    pub fn from_toml(document: &str, secrets: &dyn SecretSource) -> Result<Config, ConfigError> {
        Config::load(document, secrets, &Rules)
    }
}
