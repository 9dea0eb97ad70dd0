//! Where a request goes: the route plan (ordered candidates) computed from the config
//! snapshot, the request's routing fields and the key's preferences.

mod plan;
mod prefs;

pub use plan::{Candidate, PlanError, RoutePlan, RouteRequest};
pub use prefs::{DataCollectionPref, MaxPrice, ProviderPrefs, SortBy, SortPref};
