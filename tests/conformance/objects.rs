//! Object listings: keys in S3's order — the bytes of their UTF-8, compared one by one — on
//! every page, with common prefixes in their place.

use eddy_core::{BucketName, Lineage, ObjectKey};
use eddy_objects::{ListParams, PutOptions};

use super::Stores;

/// Keys whose byte order differs from their order as characters, case-folded or numbered.
const KEYS: [&str; 12] = [
    "a",
    "B",
    "a/b",
    "a/c/d",
    "a0",
    "é",
    "z",
    "~",
    "\u{10000}",
    "\u{ff5e}",
    "a b",
    "A",
];

pub async fn listings_are_in_utf8_binary_order_across_pages(stores: Stores) {
    let objects = stores.objects;
    let bucket = BucketName::new("order").unwrap();
    objects.create_bucket(&bucket).await.unwrap();
    for key in KEYS {
        let key = ObjectKey::new(key).unwrap();
        let opts = PutOptions {
            lineage: Lineage::root(),
            ..PutOptions::default()
        };
        objects
            .put_object(&bucket, &key, &mut &b"x"[..], opts)
            .await
            .unwrap();
    }
    let mut expected: Vec<&str> = KEYS.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

    for page_size in [1, 2, 5, 1000] {
        let mut params = ListParams {
            max_keys: page_size,
            ..ListParams::default()
        };
        let mut listed = Vec::new();
        loop {
            let page = objects.list_objects(&bucket, &params).await.unwrap();
            assert!(page.objects.len() <= page_size);
            listed.extend(page.objects.iter().map(|o| o.key.to_string()));
            match page.next {
                Some(next) => params.start = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, expected, "pages of {page_size}");
    }

    // With a delimiter, `a/` stands where its keys would.
    let params = ListParams {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..ListParams::default()
    };
    let page = objects.list_objects(&bucket, &params).await.unwrap();
    assert_eq!(page.common_prefixes, ["a/"]);
    let keys: Vec<String> = page.objects.iter().map(|o| o.key.to_string()).collect();
    let without: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|k| !k.starts_with("a/"))
        .collect();
    assert_eq!(keys, without);
}
