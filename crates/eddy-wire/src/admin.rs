//! Admin API bodies.

use serde::{Deserialize, Serialize};

/// `POST /_eddy/v1/deploy`: manifests to check as one app and put in service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub manifests: Vec<DeployedManifest>,
}

/// A manifest as `eddy deploy` sends it: its text, and its absolute path on the machine that
/// sent it, from whose folder relative paths start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedManifest {
    pub path: String,
    pub text: String,
}

/// What a deploy did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// The app's version: above every app put in service before.
    pub version: u64,
    pub functions: usize,
    pub triggers: usize,
    /// The manifest checker's warnings, as it prints them (empty when there were none).
    pub warnings: String,
}
