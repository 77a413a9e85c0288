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

/// Small objects kept with their metadata come back byte for byte (every byte value, empty
/// too), in ranges, through copies; a collection leaves them, and their bytes, alone.
pub async fn inline_objects_keep_their_bytes(stores: Stores) {
    use tokio::io::AsyncReadExt;
    let objects = stores.objects;
    let bucket = BucketName::new("inline").unwrap();
    objects.create_bucket(&bucket).await.unwrap();
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    for (key, body) in [("bytes", every_byte.clone()), ("empty", Vec::new())] {
        let key = ObjectKey::new(key).unwrap();
        let meta = objects
            .put_object(&bucket, &key, &mut &body[..], PutOptions::default())
            .await
            .unwrap();
        assert!(meta.inline, "{key}");
        assert!(objects.stored_bytes(&meta).await.unwrap() == body, "{key}");
    }
    let read = |key: &'static str, range| {
        let objects = objects.clone();
        let bucket = bucket.clone();
        async move {
            let body = objects
                .get_object(&bucket, &ObjectKey::new(key).unwrap(), range)
                .await
                .unwrap();
            let mut out = Vec::new();
            body.into_reader().read_to_end(&mut out).await.unwrap();
            out
        }
    };
    let range = Some(eddy_objects::ByteRange::FromTo(250, 260));
    assert!(read("bytes", range).await == every_byte[250..=260]);
    objects
        .copy_object(
            (&bucket, &ObjectKey::new("bytes").unwrap()),
            (&bucket, &ObjectKey::new("copied").unwrap()),
            eddy_objects::MetadataDirective::Copy,
            eddy_objects::SourceConditions::default(),
            Lineage::root(),
        )
        .await
        .unwrap();
    objects
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(read("copied", None).await == every_byte);
    assert!(read("empty", None).await.is_empty());
}
