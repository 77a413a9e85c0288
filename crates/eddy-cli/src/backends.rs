//! Where `eddy serve` keeps its state: SQLite and the node's disk by default, or a shared
//! PostgreSQL and an S3 bucket when several nodes serve one app.

use std::path::Path;

use anyhow::{Context, bail};
use eddy_bus::Bus;
use eddy_objects::S3Location;
use eddy_sigv4::Credentials;

/// The environment variables that may hold the storage's secrets; sealed at start.
pub const SECRET_VARIABLES: [&str; 4] = [
    "EDDY_DATABASE_URL",
    "EDDY_BLOBS_SECRET_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Opens the bus: on SQLite in the data directory, or on the PostgreSQL at `database`.
pub async fn open_bus(database: Option<&str>, data_dir: &Path) -> anyhow::Result<Bus> {
    match database {
        None => Bus::open(data_dir)
            .await
            .with_context(|| format!("opening the data directory {}", data_dir.display())),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Bus::open_postgres(url, data_dir)
                .await
                .with_context(|| format!("opening the database {}", eddy_bus::redacted(url)))
        }
        Some(url) => bail!(
            "--database {:?} is not a PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE (or leave it out to keep everything in the data directory with SQLite)",
            eddy_bus::redacted(url)
        ),
    }
}

/// The bucket named by `--blobs s3://BUCKET[/PREFIX]`, with its endpoint, region and keys
/// from the environment: eddy's own variables first, then the standard AWS ones.
pub fn blob_location(uri: &str) -> anyhow::Result<S3Location> {
    blob_location_from(uri, |name| {
        eddy_core::secrets::var(name).filter(|v| !v.is_empty())
    })
}

fn blob_location_from(
    uri: &str,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<S3Location> {
    let first = |names: &[&str]| names.iter().find_map(|name| var(name));
    let Some(rest) = uri.strip_prefix("s3://") else {
        bail!("--blobs {uri:?} is not an S3 location; write s3://BUCKET or s3://BUCKET/PREFIX");
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if let Err(e) = eddy_core::BucketName::new(bucket) {
        bail!("--blobs {uri:?}: {e}");
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let Some(endpoint) = first(&[
        "EDDY_BLOBS_ENDPOINT",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL",
    ]) else {
        bail!(
            "--blobs {uri:?} needs the blob store's address: set EDDY_BLOBS_ENDPOINT=http://HOST:PORT (or AWS_ENDPOINT_URL_S3)"
        );
    };
    let endpoint = endpoint.trim_end_matches('/').to_string();
    if !endpoint.starts_with("http://") {
        bail!(
            "the blob store's endpoint {endpoint:?} is not an http:// address; eddy reaches its blob store over plain HTTP (keep it on a private network, or run a TLS-terminating proxy beside each node)"
        );
    }
    let region = first(&["EDDY_BLOBS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"])
        .unwrap_or_else(|| "us-east-1".to_string());
    let key_id = first(&["EDDY_BLOBS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]);
    let secret = first(&["EDDY_BLOBS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]);
    let (Some(access_key_id), Some(secret_access_key)) = (key_id, secret) else {
        bail!(
            "--blobs {uri:?} needs the blob store's keys: set EDDY_BLOBS_ACCESS_KEY_ID and EDDY_BLOBS_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        );
    };
    Ok(S3Location {
        endpoint,
        region,
        bucket: bucket.to_string(),
        prefix,
        credentials: Credentials {
            access_key_id,
            secret_access_key,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(uri: &str, vars: &[(&str, &str)]) -> anyhow::Result<S3Location> {
        blob_location_from(uri, |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    const KEYS: [(&str, &str); 3] = [
        ("EDDY_BLOBS_ENDPOINT", "http://127.0.0.1:8333/"),
        ("EDDY_BLOBS_ACCESS_KEY_ID", "id"),
        ("EDDY_BLOBS_SECRET_ACCESS_KEY", "secret"),
    ];

    #[test]
    fn a_bucket_with_a_prefix_and_eddys_own_variables() {
        let found = location("s3://eddy-blobs/cluster/a/", &KEYS).unwrap();
        assert_eq!(found.bucket, "eddy-blobs");
        assert_eq!(found.prefix, "cluster/a/");
        assert_eq!(found.endpoint, "http://127.0.0.1:8333");
        assert_eq!(found.region, "us-east-1");
        assert_eq!(found.credentials.access_key_id, "id");
        assert_eq!(location("s3://eddy-blobs", &KEYS).unwrap().prefix, "");
    }

    #[test]
    fn the_standard_aws_variables_when_eddys_are_not_set() {
        let found = location(
            "s3://b-1",
            &[
                ("AWS_ENDPOINT_URL", "http://s3.internal:9000"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ACCESS_KEY_ID", "aws-id"),
                ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ],
        )
        .unwrap();
        assert_eq!(found.endpoint, "http://s3.internal:9000");
        assert_eq!(found.region, "eu-west-1");
        assert_eq!(found.credentials.secret_access_key, "aws-secret");
    }

    #[test]
    fn each_mistake_says_what_would_be_accepted() {
        let error = |uri, vars: &[(&str, &str)]| location(uri, vars).unwrap_err().to_string();
        assert!(error("eddy-blobs", &KEYS).contains("write s3://BUCKET"));
        assert!(error("s3://Not_A_Bucket", &KEYS).contains("bucket"));
        assert!(error("s3://eddy-blobs", &KEYS[1..]).contains("EDDY_BLOBS_ENDPOINT"));
        assert!(error("s3://eddy-blobs", &KEYS[..2]).contains("EDDY_BLOBS_SECRET_ACCESS_KEY"));
        let https = [
            ("EDDY_BLOBS_ENDPOINT", "https://s3.amazonaws.com"),
            KEYS[1],
            KEYS[2],
        ];
        assert!(error("s3://eddy-blobs", &https).contains("not an http:// address"));
    }
}
