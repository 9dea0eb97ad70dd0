//! Where a request goes: the route plan (ordered candidates) computed from the config
//! snapshot, the request's routing fields and the key's preferences.

pub mod health;
mod plan;
mod prefs;
pub mod sticky;

pub use health::{EndpointHealth, EndpointStats, HealthBook};
pub use plan::{Candidate, PlanError, RoutePlan, RouteRequest};
pub use prefs::{DataCollectionPref, MaxPrice, ProviderPrefs, SortBy, SortPref};
pub use sticky::{session_hash, StickyTable, StickyTarget};
