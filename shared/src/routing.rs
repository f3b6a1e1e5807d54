//! Routing: which buyers a lead is offered to. `plan` is pure and explains every buyer it skipped.

use crate::config::Config;
use crate::lead::LeadRecord;

/// The buyers a lead goes to, and why the others were left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingPlan {
    pub destinations: Vec<String>,
    pub skipped: Vec<(String, String)>,
}

/// Every enabled destination configured for the lead's vertical, in configuration order (filters, caps,
/// schedules and strategies come with the routing issue).
pub fn plan(config: &Config, lead: &LeadRecord) -> RoutingPlan {
    let mut plan = RoutingPlan::default();
    for destination in &config.destinations {
        if !destination.verticals.contains(&lead.vertical) {
            continue;
        }
        if destination.enabled {
            plan.destinations.push(destination.id.clone());
        } else {
            plan.skipped.push((
                destination.id.clone(),
                "the destination is disabled".to_owned(),
            ));
        }
    }
    plan
}
