//! A node's stored state: function credentials, found by any node until they expire, and the
//! apps put in service, versioned with a bounded history that keeps the manifests' latest.

use eddy_node::{AppSource, HISTORY, IssuedCredential, StoredApp};
use eddy_subscriptions::LockedApp;

use super::Stores;

fn credential(id: &str, expires_ms: i64) -> IssuedCredential {
    IssuedCredential {
        access_key_id: id.into(),
        secret: format!("secret of {id}"),
        function: "f".into(),
        node: "a".into(),
        expires_ms,
    }
}

pub async fn credentials_are_found_until_they_expire(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.credentials);
    let issued = vec![
        credential("EDDYFNSHORT", 100),
        credential("EDDYFNLONG", 1_000),
    ];
    bus.write((store.clone(), issued), |tx, (store, issued)| {
        Box::pin(store.issue(tx, issued, 50))
    })
    .await
    .unwrap();
    let found = store
        .find(&mut bus.readers(), "EDDYFNLONG", 50)
        .await
        .unwrap();
    assert_eq!(found, Some(credential("EDDYFNLONG", 1_000)));
    assert!(
        store
            .find(&mut bus.readers(), "EDDYFNSHORT", 101)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        store
            .find(&mut bus.readers(), "EDDYFNNONE", 0)
            .await
            .unwrap()
            .is_none()
    );
    // Issuing later forgets what expired.
    bus.write(
        (store.clone(), vec![credential("EDDYFNNEXT", 2_000)]),
        |tx, (store, issued)| Box::pin(store.issue(tx, issued, 500)),
    )
    .await
    .unwrap();
    assert!(
        store
            .find(&mut bus.readers(), "EDDYFNSHORT", 0)
            .await
            .unwrap()
            .is_none(),
        "purged"
    );
    assert!(
        store
            .find(&mut bus.readers(), "EDDYFNLONG", 500)
            .await
            .unwrap()
            .is_some()
    );
}

fn stored(source: AppSource) -> StoredApp {
    StoredApp {
        version: 0,
        locked: LockedApp::lock(eddy_subscriptions::App::default()).unwrap(),
        source,
        node: "a".into(),
        applied_ms: 7,
    }
}

pub async fn apps_are_versioned_with_a_bounded_history(stores: Stores) {
    let (bus, apps) = (&stores.bus, &stores.apps);
    assert!(apps.latest(&mut bus.readers()).await.unwrap().is_none());
    assert_eq!(apps.latest_version(&mut bus.readers()).await.unwrap(), None);
    let save = |source: AppSource| {
        bus.write((apps.clone(), stored(source)), |tx, (apps, app)| {
            Box::pin(apps.save(tx, app))
        })
    };
    let digest = AppSource::Manifests {
        digest: "abc".into(),
    };
    assert_eq!(save(digest.clone()).await.unwrap(), 1);
    let total = HISTORY + 5;
    for n in 2..=total {
        assert_eq!(
            save(AppSource::Deploy).await.unwrap(),
            n,
            "versions increase"
        );
    }
    let latest = apps.latest(&mut bus.readers()).await.unwrap().unwrap();
    assert_eq!(
        (latest.version, latest.source, latest.applied_ms),
        (total, AppSource::Deploy, 7)
    );
    assert_eq!(latest.locked, stored(AppSource::Deploy).locked);
    assert_eq!(
        apps.latest_version(&mut bus.readers()).await.unwrap(),
        Some(total)
    );
    let from_files = apps
        .latest_from_manifests(&mut bus.readers())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (from_files.version, from_files.source),
        (1, digest),
        "the manifests' latest app is kept beyond the history"
    );
}
