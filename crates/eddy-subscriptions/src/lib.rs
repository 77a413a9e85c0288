//! eddy's manifests and triggers: YAML files read into a validated, resolved [`App`] (every
//! mistake reported with its place, what was found and what is accepted), the filters that
//! decide which events a trigger takes, and the index that matches events to triggers.

pub mod app;
pub mod expression;
pub mod filter;
pub mod findings;
mod index;
mod load;
pub mod locked;
pub mod policy;
mod read;
pub mod yaml;

pub use app::*;
pub use expression::{EXPRESSION_FORMS, ScheduleExpression};
pub use filter::{Clause, EventSet, EventView, Filter};
pub use findings::{Finding, Findings, Severity};
pub use index::{Explanation, MatchIndex};
pub use load::{Loaded, ManifestText, load, load_files};
pub use locked::{LockError, LockedApp};
pub use policy::{ACTIONS, Effect, Statement, resource_matches, role_allows};
pub use read::parse_duration;
