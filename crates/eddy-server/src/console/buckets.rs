//! Buckets: those the viewer may list; browsing one by prefix, a page at a time; an object's
//! metadata and the events it produced; uploading (the page's script sends the file with
//! progress), downloading and deleting — each checked against the viewer's policy as the S3
//! API checks it.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use eddy_core::{BucketName, Lineage, ObjectKey};
use eddy_objects::{ListParams, ListPosition, PutOptions};
use futures_util::TryStreamExt;
use serde::Deserialize;

use super::page::{self, Html, Nav, render};
use super::session::Viewer;
use super::{BASE, ConsoleError};
use crate::Shared;

pub struct BucketRow {
    pub name: String,
    pub href: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/buckets.html")]
pub struct Buckets {
    pub nav: Nav,
    pub rows: Vec<BucketRow>,
}

fn bucket_name(name: &str) -> Result<BucketName, ConsoleError> {
    Ok(BucketName::new(name)?)
}

fn object_key(key: &str) -> Result<ObjectKey, ConsoleError> {
    Ok(ObjectKey::new(key)?)
}

/// `GET /_eddy/console/buckets`: the buckets the viewer may list.
pub async fn list(viewer: Viewer, State(s): State<Shared>) -> Result<Html, ConsoleError> {
    let rows = s
        .objects
        .list_buckets()
        .await?
        .into_iter()
        .filter(|b| viewer.allows("objects:list", &format!("bucket/{}", b.name)))
        .map(|b| BucketRow {
            href: format!("{BASE}/buckets/{}", b.name),
            created: page::time(b.created_ms),
            name: b.name.to_string(),
        })
        .collect();
    Ok(render(&Buckets {
        nav: Nav::new(&viewer, "buckets"),
        rows,
    }))
}

pub struct Folder {
    pub prefix: String,
    pub href: String,
}

pub struct ObjectRow {
    pub key: String,
    pub href: String,
    pub download: Option<String>,
    pub size: u64,
    pub modified: String,
    pub deletable: bool,
}

#[derive(Template)]
#[template(path = "console/bucket.html")]
pub struct BucketPage {
    pub nav: Nav,
    pub bucket: String,
    pub prefix: String,
    pub parents: Vec<Folder>,
    pub folders: Vec<Folder>,
    pub objects: Vec<ObjectRow>,
    pub next: Option<String>,
    pub can_upload: bool,
}

#[derive(Deserialize)]
pub struct BrowseQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
}

/// Keys on a page.
const PAGE: usize = 100;

/// `GET /_eddy/console/buckets/{bucket}?prefix=P&after=TOKEN`.
pub async fn browse(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(bucket): Path<String>,
    Query(q): Query<BrowseQuery>,
) -> Result<Html, ConsoleError> {
    let name = bucket_name(&bucket)?;
    let listed_on = if q.prefix.is_empty() {
        format!("bucket/{name}")
    } else {
        format!("bucket/{name}/{}", q.prefix)
    };
    viewer.require("objects:list", &listed_on)?;
    let params = ListParams {
        prefix: q.prefix.clone(),
        delimiter: Some("/".into()),
        start: q.after.as_deref().and_then(ListPosition::from_token),
        max_keys: PAGE,
    };
    let listed = s.objects.list_objects(&name, &params).await?;
    let here = |prefix: &str| {
        format!(
            "{BASE}/buckets/{name}?{}",
            page::query(&[("prefix", prefix)])
        )
    };
    let mut parents = vec![Folder {
        prefix: name.to_string(),
        href: here(""),
    }];
    let mut walked = String::new();
    for part in q.prefix.split_inclusive('/').filter(|p| !p.is_empty()) {
        walked.push_str(part);
        parents.push(Folder {
            prefix: part.to_string(),
            href: here(&walked),
        });
    }
    let folders = listed
        .common_prefixes
        .iter()
        .map(|p| Folder {
            prefix: p[q.prefix.len()..].to_string(),
            href: here(p),
        })
        .collect();
    let objects = listed
        .objects
        .iter()
        .filter(|o| viewer.allows("objects:list", &format!("bucket/{name}/{}", o.key)))
        .map(|o| {
            let key = o.key.to_string();
            let resource = format!("bucket/{name}/{key}");
            let with_key = page::query(&[("key", &key)]);
            ObjectRow {
                href: format!("{BASE}/buckets/{name}/object?{with_key}"),
                download: viewer
                    .allows("objects:read", &resource)
                    .then(|| format!("{BASE}/buckets/{name}/download?{with_key}")),
                deletable: viewer.allows("objects:delete", &resource),
                size: o.size,
                modified: page::time(o.last_modified_ms),
                key,
            }
        })
        .collect();
    let next = listed.next.as_ref().map(|position| {
        format!(
            "{BASE}/buckets/{name}?{}",
            page::query(&[("prefix", &q.prefix), ("after", &position.token())])
        )
    });
    Ok(render(&BucketPage {
        nav: Nav::new(&viewer, "buckets"),
        can_upload: viewer.allows("objects:write", &format!("bucket/{name}/{}", q.prefix)),
        bucket: name.to_string(),
        prefix: q.prefix,
        parents,
        folders,
        objects,
        next,
    }))
}

#[derive(Deserialize)]
pub struct KeyQuery {
    key: String,
}

pub struct Produced {
    pub sequence: u64,
    pub href: String,
    pub kind: String,
    pub time: String,
}

#[derive(Template)]
#[template(path = "console/object.html")]
pub struct ObjectPage {
    pub nav: Nav,
    pub bucket: String,
    pub key: String,
    pub facts: Vec<(String, String)>,
    pub download: Option<String>,
    pub deletable: bool,
    pub events: Vec<Produced>,
    pub scanned: u64,
}

/// `GET /_eddy/console/buckets/{bucket}/object?key=K`: its metadata and its events.
pub async fn object(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(bucket): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Html, ConsoleError> {
    let name = bucket_name(&bucket)?;
    let key = object_key(&q.key)?;
    let resource = format!("bucket/{name}/{key}");
    viewer.require("objects:read", &resource)?;
    let meta = s.objects.head_object(&name, &key).await?;
    let mut facts = vec![
        ("Size".to_string(), format!("{} bytes", meta.size)),
        ("ETag".to_string(), format!("\"{}\"", meta.etag)),
        (
            "Content type".to_string(),
            meta.content_type.clone().unwrap_or_default(),
        ),
        (
            "Last modified".to_string(),
            page::time(meta.last_modified_ms),
        ),
        ("SHA-256".to_string(), meta.sha256.clone()),
        (
            "Stored".to_string(),
            if meta.inline { "inline" } else { "in a blob" }.to_string(),
        ),
    ];
    if let Some(checksum) = &meta.checksum {
        let described = format!(
            "{} ({}) {}",
            checksum.algorithm.name(),
            checksum.kind.name(),
            checksum.value
        );
        facts.push(("Checksum".to_string(), described));
    }
    for (name, value) in meta.headers.iter() {
        facts.push((name.clone(), value.clone()));
    }
    for (name, value) in meta.user_meta.iter() {
        facts.push((format!("x-amz-meta-{name}"), value.clone()));
    }
    let mut events = Vec::new();
    if viewer.allows("admin:read", "*") {
        let source = format!("bucket/{name}");
        events = super::events::latest_of(&s, &source, key.as_str())
            .await?
            .iter()
            .map(|e| Produced {
                sequence: e.sequence,
                href: page::event_href(e.sequence),
                kind: e.kind.clone(),
                time: page::time(e.time_ms),
            })
            .collect();
    }
    let with_key = page::query(&[("key", key.as_str())]);
    Ok(render(&ObjectPage {
        nav: Nav::new(&viewer, "buckets"),
        download: Some(format!("{BASE}/buckets/{name}/download?{with_key}")),
        deletable: viewer.allows("objects:delete", &resource),
        facts,
        events,
        scanned: super::events::KEY_SCAN,
        bucket: name.to_string(),
        key: key.to_string(),
    }))
}

/// `GET /_eddy/console/buckets/{bucket}/download?key=K`: the object's bytes, as a download.
pub async fn download(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(bucket): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, ConsoleError> {
    let name = bucket_name(&bucket)?;
    let key = object_key(&q.key)?;
    viewer.require("objects:read", &format!("bucket/{name}/{key}"))?;
    let body = s.objects.get_object(&name, &key, None).await?;
    let meta = body.meta.clone();
    let file = key.as_str().rsplit('/').next().unwrap_or("download");
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        file.replace(
            |c: char| !c.is_ascii_graphic() || c == '"' || c == '\\',
            "_"
        ),
        page::encode(file)
    );
    let stream = tokio_util::io::ReaderStream::new(body.into_reader());
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    // Served as bytes to save, never rendered as a page of eddy's origin.
    headers.insert(
        header::CONTENT_TYPE,
        "application/octet-stream".parse().expect("a header value"),
    );
    headers.insert(header::CONTENT_LENGTH, meta.size.into());
    headers.insert(
        header::CONTENT_DISPOSITION,
        disposition
            .parse()
            .map_err(|_| ConsoleError::bad_request("the key cannot be named in a download"))?,
    );
    Ok(response)
}

/// `POST /_eddy/console/buckets/{bucket}/upload?key=K`: the body is the file (sent by the
/// page's script with `X-Eddy-Csrf`), stored as a PUT stores it, with its event.
pub async fn upload(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(bucket): Path<String>,
    Query(q): Query<KeyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ConsoleError> {
    let token = headers
        .get("x-eddy-csrf")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    viewer.check_csrf(token)?;
    let name = bucket_name(&bucket)?;
    let key = object_key(&q.key)?;
    viewer.require("objects:write", &format!("bucket/{name}/{key}"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut reader = tokio_util::io::StreamReader::new(stream);
    let options = PutOptions {
        content_type,
        lineage: Lineage::root(),
        ..PutOptions::default()
    };
    let meta = s
        .objects
        .put_object(&name, &key, &mut reader, options)
        .await?;
    let with_key = page::query(&[("key", key.as_str())]);
    let answer = serde_json::json!({
        "key": key.as_str(),
        "size": meta.size,
        "etag": meta.etag,
        "href": format!("{BASE}/buckets/{name}/object?{with_key}"),
    });
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    csrf: String,
    key: String,
}

/// `POST /_eddy/console/buckets/{bucket}/delete`: removes the form's key, then back to its
/// folder.
pub async fn delete(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(bucket): Path<String>,
    axum::Form(form): axum::Form<DeleteForm>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(&form.csrf)?;
    let name = bucket_name(&bucket)?;
    let key = object_key(&form.key)?;
    viewer.require("objects:delete", &format!("bucket/{name}/{key}"))?;
    s.objects
        .delete_object(&name, &key, Lineage::root())
        .await?;
    let folder = key.as_str().rsplit_once('/').map_or("", |(f, _)| f);
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    Ok(Redirect::to(&format!(
        "{BASE}/buckets/{name}?{}",
        page::query(&[("prefix", &prefix)])
    ))
    .into_response())
}
