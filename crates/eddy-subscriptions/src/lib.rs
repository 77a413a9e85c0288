//! Manifests, filters and matching.

pub mod app;
pub mod filter;
pub mod yaml;
