//! Listing against a model of S3's semantics: keys after `start-after` that begin with the
//! prefix, in byte order, rolled up at the first delimiter after the prefix, paged by
//! `max-keys` with keys and common prefixes counted together.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use eddy_objects::{ListParams, ListPosition};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Key(String),
    Prefix(String),
}

fn model(
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    // `String`'s order is byte order of UTF-8, which is S3's.
    for key in keys
        .iter()
        .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|s| k.as_str() > s))
    {
        let rolled = delimiter.and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|i| key[..prefix.len() + i + d.len()].to_string())
        });
        let entry = match rolled {
            // Listing after a common prefix (v1's NextMarker) does not return it again.
            Some(cp) if start_after == Some(cp.as_str()) => continue,
            Some(cp) => Entry::Prefix(cp),
            None => Entry::Key(key.clone()),
        };
        if entries.last() != Some(&entry) {
            entries.push(entry);
        }
    }
    entries
}

fn key_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "/", "-", "ü", "~"], 1..6)
        .prop_map(|parts| parts.concat())
}

#[test]
fn listing_pages_match_the_model() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = rt.block_on(fixture());
    let case = AtomicUsize::new(0);
    let strategy = (
        proptest::collection::btree_set(key_strategy(), 0..25),
        prop_oneof![
            Just(String::new()),
            key_strategy().prop_map(|k| k.chars().take(2).collect())
        ],
        prop_oneof![
            Just(None),
            Just(Some("/".to_string())),
            Just(Some("-".to_string())),
            Just(Some("a/".to_string()))
        ],
        prop_oneof![
            Just(None),
            key_strategy().prop_map(Some),
            Just(Some("a/".to_string()))
        ],
        1usize..6,
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(
            &strategy,
            |(keys, prefix, delimiter, start_after, max_keys)| {
                let name = format!("case-{}", case.fetch_add(1, Ordering::Relaxed));
                let expected = model(&keys, &prefix, delimiter.as_deref(), start_after.as_deref());
                let got = rt.block_on(async {
                    f.store.create_bucket(&bucket(&name)).await.unwrap();
                    for k in &keys {
                        put(&f.store, &name, k, b"").await;
                    }
                    let mut got = Vec::new();
                    let mut start = start_after.clone().map(ListPosition::After);
                    loop {
                        let params = ListParams {
                            prefix: prefix.clone(),
                            delimiter: delimiter.clone(),
                            start: start.clone(),
                            max_keys,
                        };
                        let page = f.store.list_objects(&bucket(&name), &params).await.unwrap();
                        let entries = page.objects.len() + page.common_prefixes.len();
                        // Keys and prefixes interleave in order; rebuild that order to compare.
                        let mut merged: Vec<Entry> = page
                            .objects
                            .iter()
                            .map(|o| Entry::Key(o.key.to_string()))
                            .collect();
                        merged.extend(page.common_prefixes.iter().cloned().map(Entry::Prefix));
                        merged.sort_by(|a, b| entry_key(a).cmp(entry_key(b)));
                        got.extend(merged);
                        match page.next {
                            Some(next) => {
                                assert_eq!(entries, max_keys, "a truncated page is full");
                                let token = next.token();
                                start = Some(ListPosition::from_token(&token).unwrap());
                            }
                            None => {
                                assert!(entries <= max_keys);
                                break;
                            }
                        }
                    }
                    got
                });
                prop_assert_eq!(got, expected);
                Ok(())
            },
        )
        .unwrap();
}

fn entry_key(e: &Entry) -> &str {
    match e {
        Entry::Key(k) | Entry::Prefix(k) => k,
    }
}

#[tokio::test]
async fn listing_edge_cases() {
    let f = fixture().await;
    f.store.create_bucket(&bucket("edges")).await.unwrap();
    for k in ["a/1", "a/2", "b", "c/d/e"] {
        put(&f.store, "edges", k, b"").await;
    }
    let list = |params: ListParams| {
        let store = f.store.clone();
        async move { store.list_objects(&bucket("edges"), &params).await.unwrap() }
    };
    let zero = list(ListParams {
        max_keys: 0,
        ..Default::default()
    })
    .await;
    assert!(zero.objects.is_empty() && !zero.is_truncated());
    let huge = list(ListParams {
        max_keys: 1_000_000,
        ..Default::default()
    })
    .await;
    assert_eq!(huge.objects.len(), 4);
    let rolled = list(ListParams {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    })
    .await;
    assert_eq!(rolled.common_prefixes, ["a/", "c/"]);
    assert_eq!(
        rolled
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    let inside = list(ListParams {
        prefix: "c/".into(),
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    })
    .await;
    assert_eq!(inside.common_prefixes, ["c/d/"]);
    let after_prefix = list(ListParams {
        delimiter: Some("/".into()),
        start: Some(ListPosition::After("a/".into())),
        max_keys: 1000,
        ..Default::default()
    })
    .await;
    assert_eq!(
        after_prefix.common_prefixes,
        ["c/"],
        "resuming after a/ skips it"
    );
    let err = f
        .store
        .list_objects(&bucket("missing"), &ListParams::default())
        .await
        .unwrap_err();
    assert!(matches!(err, eddy_objects::ObjectError::NoSuchBucket(_)));
}
