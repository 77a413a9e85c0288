//! `POST /_eddy/v1/deploy` (what `eddy deploy` sends): the manifests, checked as one app and,
//! when valid, put in service by the node.

use std::path::Path;

use axum::Json;
use axum::extract::State;
use eddy_subscriptions::ManifestText;
use eddy_wire::admin::{DeployRequest, DeployResponse};

use crate::Shared;
use crate::error::ApiError;

/// Errors change nothing and come back as the manifest checker reports them.
pub async fn deploy(
    State(s): State<Shared>,
    Json(request): Json<DeployRequest>,
) -> Result<Json<DeployResponse>, ApiError> {
    // Relative paths start from each manifest's folder on the machine that sent it (so a
    // deploy from the same machine finds the code).
    let dirs: Vec<&Path> = request
        .manifests
        .iter()
        .map(|m| Path::new(&m.path).parent().unwrap_or(Path::new(".")))
        .collect();
    let texts: Vec<ManifestText> = request
        .manifests
        .iter()
        .zip(&dirs)
        .map(|(m, dir)| ManifestText {
            name: &m.path,
            text: &m.text,
            dir,
        })
        .collect();
    let deployed = s.node.deploy(&texts).await?;
    Ok(Json(DeployResponse {
        version: deployed.version,
        functions: deployed.functions,
        triggers: deployed.triggers,
        warnings: deployed.warnings,
    }))
}
