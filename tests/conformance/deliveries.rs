//! Deliveries: created once per event and trigger, claimed by exactly one claimer however many
//! race, one at a time per key in commit order, back to ready when a lease runs out, retried,
//! dead-lettered and redriven; slots one limit for everyone sharing the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use eddy_bus::Bus;
use eddy_executor::{
    BatchCandidate, Claim, Created, DeadReason, DeliveryStore, ExecError, InvocationRecord, Leased,
    NewDelivery, RemovedDone, Settle, Settlement,
};

use super::Stores;

const NOW: i64 = 1_000_000;

fn delivery(seq: u64, function: &str, order_key: Option<&str>) -> NewDelivery {
    NewDelivery {
        event_seq: seq,
        event_time_ms: NOW,
        trigger: format!("on-{function}"),
        function: function.into(),
        order_key: order_key.map(str::to_string),
        dead: None,
        lease_until: None,
        replay: 0,
        batched: false,
    }
}

async fn create(bus: &Bus, store: &Arc<dyn DeliveryStore>, rows: Vec<NewDelivery>) -> Vec<Created> {
    bus.write((store.clone(), rows), |tx, (store, rows)| {
        Box::pin(store.create(tx, "creator", rows, NOW))
    })
    .await
    .unwrap()
}

/// Creates unordered deliveries of `f` for events 1 ..= `events`.
async fn create_of_f(bus: &Bus, store: &Arc<dyn DeliveryStore>, events: u64) -> Vec<Created> {
    create(
        bus,
        store,
        (1..=events).map(|seq| delivery(seq, "f", None)).collect(),
    )
    .await
}

fn claim_for(node: &str, now_ms: i64, limit: u32, room: u32) -> Claim {
    Claim {
        node: node.into(),
        now_ms,
        limit,
        room: HashMap::new(),
        default_room: room,
        lease_until: HashMap::new(),
        default_until: now_ms + 10_000,
    }
}

async fn claim(bus: &Bus, store: &Arc<dyn DeliveryStore>, claim: Claim) -> Vec<Leased> {
    bus.write((store.clone(), claim), |tx, (store, claim)| {
        Box::pin(store.claim(tx, claim))
    })
    .await
    .unwrap()
}

async fn settle(
    bus: &Bus,
    store: &Arc<dyn DeliveryStore>,
    leased: &Leased,
    settlement: Settlement,
    now_ms: i64,
) {
    record(bus, store, vec![settled(leased, settlement, now_ms, None)]).await;
}

fn settled(
    leased: &Leased,
    settlement: Settlement,
    now_ms: i64,
    record: Option<InvocationRecord>,
) -> Settle {
    Settle {
        delivery: Some(leased.into()),
        settlement,
        record,
        destination: None,
        batch: None,
        now_ms,
    }
}

/// Returns the leases that ran out by `at` to ready; how many.
async fn expire(bus: &Bus, store: &Arc<dyn DeliveryStore>, at: i64) -> u64 {
    bus.write((store.clone(), at), |tx, (store, at)| {
        Box::pin(store.expire(tx, *at))
    })
    .await
    .unwrap()
}

/// Records settlements; returns the deliveries they moved.
async fn record(bus: &Bus, store: &Arc<dyn DeliveryStore>, batch: Vec<Settle>) -> Vec<i64> {
    bus.write((store.clone(), batch), |tx, (store, batch)| {
        Box::pin(store.settle(tx, batch))
    })
    .await
    .unwrap()
}

/// What an attempt at `leased` that succeeded would record.
fn success(leased: &Leased, request_id: &str) -> InvocationRecord {
    InvocationRecord {
        request_id: request_id.into(),
        function: leased.function.clone(),
        delivery_id: Some(leased.id),
        event_seq: Some(leased.event_seq),
        attempt: leased.attempt,
        start_ms: NOW,
        duration_us: 1_000,
        outcome: "success".into(),
        error_type: None,
        error: None,
        output: String::new(),
        truncated: false,
        memory_mb: 128,
        billed_ms: 1,
        max_memory_mb: None,
        init_us: None,
        batch_size: None,
        response: Some("null".into()),
    }
}

pub async fn creation_is_idempotent(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    let first = create(
        bus,
        store,
        vec![delivery(1, "f", None), delivery(2, "f", None)],
    )
    .await;
    assert_eq!(first.len(), 2);
    let again = create(
        bus,
        store,
        vec![delivery(1, "f", None), delivery(3, "f", None)],
    )
    .await;
    assert_eq!(
        again.iter().map(|c| c.event_seq).collect::<Vec<_>>(),
        [3],
        "an event and trigger make one delivery, however often they are matched"
    );
    assert_eq!(store.counts(&mut bus.readers()).await.unwrap().total(), 3);
}

/// A replay makes a delivery of its own for an event and trigger that had one; made twice (its
/// commit's answer lost), it is still one.
pub async fn a_replay_delivers_again_apart_from_the_original(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    create(bus, store, vec![delivery(7, "f", Some("k"))]).await;
    let replay = bus
        .write(store.clone(), |tx, store| {
            Box::pin(store.record_replay(tx, "on-f", (1, 7), None, NOW))
        })
        .await
        .unwrap();
    let again = NewDelivery {
        replay,
        order_key: Some(format!("k\u{1f}replay {replay}")),
        ..delivery(7, "f", None)
    };
    assert_eq!(create(bus, store, vec![again.clone()]).await.len(), 1);
    assert!(create(bus, store, vec![again]).await.is_empty());
    let made = store.deliveries_of(&mut bus.readers(), 7).await.unwrap();
    assert_eq!(
        made.iter().map(|d| d.replay).collect::<Vec<_>>(),
        [0, replay],
        "the original first, then the replay's"
    );
    // Its progress moves from where it was read, once: a second mover finds it moved.
    let advance = |from: u64, to: u64| {
        bus.write(
            (store.clone(), replay, from, to),
            |tx, (store, id, from, to)| {
                Box::pin(store.advance_replay(tx, *id, *from, *to, 1, Some(NOW)))
            },
        )
    };
    assert!(advance(1, 8).await.unwrap());
    assert!(!advance(1, 8).await.unwrap(), "moved already");
    let shown = store.replays(&mut bus.readers(), false).await.unwrap();
    assert_eq!(
        (shown[0].next_seq, shown[0].events, shown[0].finished_ms),
        (8, 1, Some(NOW))
    );
    assert!(
        store
            .replays(&mut bus.readers(), true)
            .await
            .unwrap()
            .is_empty()
    );
    // The replay's delivery does not wait behind the original's (another order key).
    let leased = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    assert_eq!(
        leased.iter().map(|d| d.replay).collect::<Vec<_>>(),
        [0, replay]
    );
}

pub async fn concurrent_claimers_never_share_a_delivery(stores: Stores) {
    let (bus, store) = (stores.bus.clone(), stores.deliveries.clone());
    let rows: Vec<NewDelivery> = (1..=300)
        .map(|seq| delivery(seq, if seq % 2 == 0 { "even" } else { "odd" }, None))
        .collect();
    create(&bus, &store, rows).await;
    let mut claimers = Vec::new();
    for node in 0..4 {
        let (bus, store) = (bus.clone(), store.clone());
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let leased = claim(&bus, &store, claim_for(&format!("n{node}"), NOW, 16, 16)).await;
                if leased.is_empty() {
                    return mine;
                }
                mine.extend(leased.into_iter().map(|d| d.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "delivery {id} was leased twice");
        }
    }
    assert_eq!(seen.len(), 300, "every delivery was leased");
    let counts = store.counts(&mut bus.readers()).await.unwrap();
    assert_eq!((counts.ready, counts.leased), (0, 300));
}

pub async fn a_key_runs_one_delivery_at_a_time_in_order(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    create(
        bus,
        store,
        vec![
            delivery(1, "f", Some("k")),
            delivery(2, "f", Some("other")),
            delivery(3, "f", Some("k")),
            delivery(4, "f", None),
            delivery(5, "f", Some("k")),
        ],
    )
    .await;
    let due = store.due(&mut bus.readers(), NOW, 100).await.unwrap();
    assert_eq!(
        due.get("f"),
        Some(&3),
        "due: the first of each key, and the unordered one"
    );
    let mut order = Vec::new();
    loop {
        let leased = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
        if leased.is_empty() {
            break;
        }
        let of_k: Vec<u64> = leased
            .iter()
            .filter(|d| [1, 3, 5].contains(&d.event_seq))
            .map(|d| d.event_seq)
            .collect();
        assert!(of_k.len() <= 1, "one delivery of a key at a time: {of_k:?}");
        order.extend(of_k);
        for d in leased {
            settle(bus, store, &d, Settlement::Done, NOW).await;
        }
    }
    assert_eq!(order, [1, 3, 5], "a key's deliveries run in commit order");
    assert_eq!(store.counts(&mut bus.readers()).await.unwrap().done, 5);
}

/// A delivery ordered per key is created leased, to start at once, only while nothing of its
/// key waits or runs; else it is created ready, and leased in its key's turn.
pub async fn an_ordered_delivery_starts_leased_only_while_its_key_is_free(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    let leased_now = |seq, key| NewDelivery {
        lease_until: Some(NOW + 60_000),
        ..delivery(seq, "f", Some(key))
    };
    let states = |created: Vec<Created>| -> Vec<(u64, bool)> {
        created.iter().map(|c| (c.event_seq, c.leased)).collect()
    };
    let first = create(bus, store, vec![leased_now(1, "k"), leased_now(2, "j")]).await;
    let one = Leased {
        id: first[0].id,
        event_seq: 1,
        event_time_ms: NOW,
        trigger: "on-f".into(),
        function: "f".into(),
        attempt: 1,
        replay: 0,
    };
    assert_eq!(states(first), [(1, true), (2, true)], "both keys free");
    // 1 runs: k's next waits; j's next waits behind 2, which runs; "m" is free.
    let second = create(
        bus,
        store,
        vec![leased_now(3, "k"), leased_now(4, "j"), leased_now(5, "m")],
    )
    .await;
    assert_eq!(states(second), [(3, false), (4, false), (5, true)]);
    let claimed = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    assert!(claimed.is_empty(), "3 and 4 wait behind 1 and 2");
    // 1 done: 3 is k's turn, leased by a claim; a dead one holds nothing.
    settle(bus, store, &one, Settlement::Done, NOW).await;
    let next = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    assert_eq!(next.iter().map(|d| d.event_seq).collect::<Vec<_>>(), [3]);
    let dead = Settlement::Dead {
        reason: DeadReason::RetriesExhausted,
        error: "gave up".into(),
    };
    settle(bus, store, &next[0], dead, NOW).await;
    let after_dead = create(bus, store, vec![leased_now(6, "k")]).await;
    assert_eq!(
        states(after_dead),
        [(6, true)],
        "a dead letter does not hold its key"
    );
}

pub async fn leases_expire_and_a_node_reclaims_only_its_own(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    create_of_f(bus, store, 4).await;
    let a = claim(bus, store, claim_for("a", NOW, 2, 2)).await;
    let b = claim(bus, store, claim_for("b", NOW, 2, 2)).await;
    assert_eq!((a.len(), b.len()), (2, 2));
    assert_eq!(
        expire(bus, store, NOW + 5_000).await,
        0,
        "leases still running"
    );
    let reclaimed = bus
        .write((store.clone(), NOW + 5_000), |tx, (store, now)| {
            Box::pin(store.reclaim(tx, "a", *now))
        })
        .await
        .unwrap();
    assert_eq!(
        reclaimed, 2,
        "a starting node takes back its own leases only"
    );
    let again = claim(bus, store, claim_for("c", NOW + 5_000, 10, 10)).await;
    let ids: HashSet<i64> = again.iter().map(|d| d.id).collect();
    assert_eq!(
        ids,
        a.iter().map(|d| d.id).collect(),
        "b's leases were not taken"
    );
    assert_eq!(
        expire(bus, store, NOW + 20_000).await,
        4,
        "expired leases go back"
    );
    assert_eq!(store.counts(&mut bus.readers()).await.unwrap().ready, 4);
}

pub async fn settling_retries_dead_letters_and_redrives(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    create(
        bus,
        store,
        vec![delivery(1, "f", None), delivery(2, "f", None)],
    )
    .await;
    let leased = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    assert_eq!(leased.len(), 2);
    let retry_at = NOW + 60_000;
    let retried = Settlement::Retry {
        at_ms: retry_at,
        error: "try later".into(),
    };
    settle(bus, store, &leased[0], retried, NOW).await;
    let dead = Settlement::Dead {
        reason: DeadReason::RetriesExhausted,
        error: "gave up".into(),
    };
    settle(bus, store, &leased[1], dead, NOW).await;
    assert_eq!(
        store.next_due(&mut bus.readers(), NOW).await.unwrap(),
        Some(retry_at)
    );
    assert_eq!(
        store.next_due(&mut bus.readers(), retry_at).await.unwrap(),
        None,
        "nothing is due after the retry"
    );
    assert!(
        claim(bus, store, claim_for("a", NOW + 1, 10, 10))
            .await
            .is_empty(),
        "not due yet"
    );
    let due = claim(bus, store, claim_for("a", retry_at, 10, 10)).await;
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].attempt), (leased[0].id, 2));
    let letters = store
        .dead_letters(&mut bus.readers(), Some("f"))
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadReason::RetriesExhausted);
    assert_eq!(letters[0].last_error.as_deref(), Some("gave up"));
    let redriven = bus
        .write((store.clone(), leased[1].id), |tx, (store, id)| {
            Box::pin(store.redrive(tx, Some(*id), None, NOW))
        })
        .await
        .unwrap();
    assert_eq!(redriven, 1);
    assert!(
        store
            .dead_letters(&mut bus.readers(), None)
            .await
            .unwrap()
            .is_empty()
    );
    let again = claim(bus, store, claim_for("a", retry_at, 10, 10)).await;
    assert_eq!(
        (again.len(), again[0].attempt),
        (1, 1),
        "a redrive starts afresh"
    );
}

/// The settler records a batch again when its commit's answer was lost (the database went away
/// as it committed): the second recording must go through and change nothing, or the settler
/// would retry it forever and record nothing more. And an attempt that outlived its lease
/// (another node now runs the delivery) must not undo the later attempt's lease by failing.
pub async fn settling_again_changes_nothing_and_a_stale_attempt_leaves_the_lease_alone(
    stores: Stores,
) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    create(
        bus,
        store,
        vec![delivery(1, "f", None), delivery(2, "f", None)],
    )
    .await;
    let leased = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    let first = leased.iter().find(|d| d.event_seq == 1).unwrap();
    let batch = vec![settled(
        first,
        Settlement::Done,
        NOW,
        Some(success(first, "r-1")),
    )];
    assert_eq!(record(bus, store, batch.clone()).await, [first.id]);
    assert!(
        record(bus, store, batch).await.is_empty(),
        "the second recording moves nothing (no destination is written twice)"
    );
    let recorded = store
        .invocations(&mut bus.readers(), Some("f"), None, 0, 100)
        .await
        .unwrap()
        .records;
    assert_eq!(
        recorded
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r-1"],
        "recorded once"
    );
    assert_eq!(
        recorded[0].response.as_deref(),
        Some("null"),
        "with its answer"
    );
    let latest = store
        .latest_invocations(&mut bus.readers(), "f", 10)
        .await
        .unwrap();
    assert_eq!(latest, recorded, "the latest, newest first");

    // The second delivery's lease runs out while its attempt still runs; node b takes it.
    let stale = leased.iter().find(|d| d.event_seq == 2).unwrap();
    expire(bus, store, NOW + 20_000).await;
    let taken = claim(bus, store, claim_for("b", NOW + 20_000, 10, 10)).await;
    assert_eq!(
        taken.iter().map(|d| (d.id, d.attempt)).collect::<Vec<_>>(),
        [(stale.id, 2)]
    );
    let retry = Settlement::Retry {
        at_ms: NOW + 21_000,
        error: "failed late".into(),
    };
    settle(bus, store, stale, retry, NOW + 20_500).await;
    let dead = Settlement::Dead {
        reason: DeadReason::RetriesExhausted,
        error: "failed late".into(),
    };
    settle(bus, store, stale, dead, NOW + 20_500).await;
    let counts = store.counts(&mut bus.readers()).await.unwrap();
    assert_eq!(
        (counts.leased, counts.ready, counts.dead),
        (1, 0, 0),
        "b's attempt keeps its lease"
    );
    assert!(
        claim(bus, store, claim_for("c", NOW + 22_000, 10, 10))
            .await
            .is_empty(),
        "nobody else runs it while b does"
    );
    settle(bus, store, &taken[0], Settlement::Done, NOW + 22_000).await;
    assert_eq!(store.counts(&mut bus.readers()).await.unwrap().done, 2);
}

pub async fn slots_are_one_limit_for_every_claimer(stores: Stores) {
    let until = eddy_bus::now_ms() + 60_000;
    let mut takers = Vec::new();
    for n in 0..8 {
        let store = if n % 2 == 0 {
            stores.deliveries.clone()
        } else {
            stores.other_node.clone()
        };
        takers.push(tokio::spawn(async move {
            store.take_slots("f", 3, 2, until).await.unwrap()
        }));
    }
    let mut taken = 0;
    for taker in takers {
        taken += taker.await.unwrap();
    }
    assert_eq!(
        taken, 3,
        "never more than the capacity, whichever node asks"
    );
    let store = &stores.deliveries;
    let mine = store.take_slots("f", 3, 0, until).await.unwrap();
    assert_eq!(mine, 0);
    // Give back what this node holds (at most 3); the other node's stay taken.
    store.give_back("f", 3).await.unwrap();
    stores.other_node.give_back("f", 3).await.unwrap();
    assert_eq!(store.take_slots("f", 3, 5, until).await.unwrap(), 3);
    assert_eq!(
        store.take_slots("g", 1, 1, until).await.unwrap(),
        1,
        "per function"
    );
    store.give_back("f", 3).await.unwrap();
    // A slot whose holder died stops counting when its time runs out.
    let past = eddy_bus::now_ms() - 1;
    assert_eq!(
        stores.other_node.take_slots("h", 1, 1, past).await.unwrap(),
        1
    );
    let after_expiry = store.take_slots("h", 1, 1, until).await.unwrap();
    let one_process = Arc::ptr_eq(&stores.deliveries, &stores.other_node);
    assert_eq!(
        after_expiry,
        if one_process { 0 } else { 1 },
        "in one process a slot is given back by its holder, never lost to a death"
    );
}

/// A slot held anew does not run out while its holder lives (a chain of batches hands one on
/// for as long as its trigger is busy); a node holds only its own.
pub async fn held_slots_do_not_run_out(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    let one_process = Arc::ptr_eq(&stores.deliveries, &stores.other_node);
    let past = eddy_bus::now_ms() - 1;
    let later = eddy_bus::now_ms() + 60_000;
    // Taken long ago: by now they would count no more.
    assert_eq!(store.take_slots("h", 1, 1, past).await.unwrap(), 1);
    let other = &stores.other_node;
    assert_eq!(other.take_slots("i", 1, 1, past).await.unwrap(), 1);
    for function in ["h", "i"] {
        bus.write(store.clone(), move |tx, store| {
            Box::pin(store.hold_slots(tx, function, later))
        })
        .await
        .unwrap();
    }
    assert_eq!(
        other.take_slots("h", 1, 1, later).await.unwrap(),
        0,
        "held again"
    );
    assert_eq!(
        store.take_slots("i", 1, 1, later).await.unwrap(),
        if one_process { 0 } else { 1 },
        "another node's slot is not this node's to hold (in one process, none runs out)"
    );
}

/// A batched trigger's candidates are each key's due records in event order, none of a key
/// with a record in a running batch; its running batches are counted, those another node
/// leased apart, and those that have run and wait for their settlement not at all (their keys
/// stay taken); a batch is leased under its invocation's id; a record sent back by a
/// bisection keeps its half's name and is not counted as an attempt; and an event's
/// invocations include the batches it went in.
pub async fn batches_take_each_keys_due_records_and_a_bisection_is_not_an_attempt(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    let batched = |seq, key| NewDelivery {
        batched: true,
        ..delivery(seq, "f", key)
    };
    let rows = vec![
        batched(1, Some("k")),
        batched(2, Some("k")),
        batched(3, Some("j")),
        batched(4, Some("k")),
        batched(5, None),
        // Not batched: never a batch's.
        delivery(6, "f", None),
    ];
    let ids: HashMap<u64, i64> = create(bus, store, rows)
        .await
        .iter()
        .map(|c| (c.event_seq, c.id))
        .collect();
    let candidates = |at: i64| {
        let store = store.clone();
        async move {
            bus.write((store, at), |tx, (store, at)| {
                Box::pin(async move {
                    // As node b sees them: node a leases them all below.
                    let running = store.running_batches(tx, "on-f", "b", &[]).await?;
                    let own = store.running_batches(tx, "on-f", "a", &[]).await?;
                    assert_eq!((own.all, own.elsewhere), (running.all, 0));
                    assert_eq!(running.elsewhere, running.all);
                    let found = store.batch_candidates(tx, "on-f", *at, 100).await?;
                    Ok::<_, ExecError>((found, running.all))
                })
            })
            .await
            .unwrap()
        }
    };
    let (found, running) = candidates(NOW).await;
    let seqs = |found: &[BatchCandidate]| -> Vec<u64> {
        found.iter().map(|c| c.delivery.event_seq).collect()
    };
    assert_eq!((seqs(&found), running), (vec![1, 2, 3, 4, 5], 0));
    let single = claim(bus, store, claim_for("a", NOW, 100, 10)).await;
    assert_eq!(
        single.iter().map(|d| d.event_seq).collect::<Vec<_>>(),
        [6],
        "only the unbatched one is claimed alone"
    );
    assert_eq!(found[0].order_key.as_deref(), Some("k"));
    assert_eq!(found[0].ready_ms, NOW);

    let by_a = claim_for("a", NOW, 100, 10);
    let lease = |batch: Vec<i64>, name: &'static str| {
        let input = (store.clone(), by_a.clone(), batch);
        async move {
            bus.write(input, move |tx, (store, claim, batch)| {
                Box::pin(store.lease_batch(tx, claim, batch, name, NOW + 10_000))
            })
            .await
            .unwrap()
        }
    };
    lease(vec![ids[&1], ids[&2]], "b-1").await;
    let (found, running) = candidates(NOW).await;
    assert_eq!(
        (seqs(&found), running),
        (vec![3, 5], 1),
        "k's later record waits for the running batch"
    );
    lease(vec![ids[&3]], "b-2").await;
    assert_eq!(candidates(NOW).await.1, 2, "two batches run");
    // b-1 has run and waits for its settlement: it is not counted, but its key stays taken.
    let (settling, found) = bus
        .write(store.clone(), |tx, store| {
            Box::pin(async move {
                let settling = store
                    .running_batches(tx, "on-f", "a", &["b-1".to_string(), "gone".to_string()])
                    .await?;
                let found = store.batch_candidates(tx, "on-f", NOW, 100).await?;
                Ok::<_, ExecError>((settling, found))
            })
        })
        .await
        .unwrap();
    assert_eq!((settling.all, settling.elsewhere), (1, 0));
    assert_eq!(seqs(&found), [5], "k's and j's records wait");

    // b-1 failed and was bisected: record 1 done (say), record 2 sent back to its half.
    let leased = |seq: u64| Leased {
        id: ids[&seq],
        event_seq: seq,
        event_time_ms: NOW,
        trigger: "on-f".into(),
        function: "f".into(),
        attempt: 1,
        replay: 0,
    };
    let mut invocation = success(&leased(1), "b-1");
    invocation.batch_size = Some(2);
    let mut first = settled(&leased(1), Settlement::Done, NOW, Some(invocation));
    first.batch = Some("b-1".into());
    let rebatch = Settlement::Rebatch {
        part: Some("b-1.1".into()),
        error: Some("boom".into()),
    };
    let mut second = settled(&leased(2), rebatch, NOW + 5, None);
    second.batch = Some("b-1".into());
    let moved = record(bus, store, vec![first.clone(), second.clone()]).await;
    assert_eq!(moved.len(), 2);
    assert!(
        record(bus, store, vec![first, second]).await.is_empty(),
        "settling again moves nothing"
    );
    let (found, _) = candidates(NOW + 5).await;
    assert_eq!(seqs(&found), [2, 4, 5]);
    let back = &found[0];
    assert_eq!(back.part.as_deref(), Some("b-1.1"));
    assert_eq!(back.delivery.attempt, 1, "a bisection is not an attempt");
    assert_eq!(back.ready_ms, NOW, "due when it was");

    // A batched delivery is never claimed one by one, until its trigger stops batching.
    let mut other = delivery(9, "g", None);
    other.batched = true;
    create(bus, store, vec![other]).await;
    assert!(
        claim(bus, store, claim_for("a", NOW, 100, 10))
            .await
            .is_empty()
    );
    let mark = |names: Vec<&'static str>| {
        let store = store.clone();
        async move {
            bus.write((store, names), |tx, (store, names)| {
                Box::pin(store.mark_batched(tx, names))
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(
        mark(vec!["on-f"]).await,
        2,
        "g's stops being batched; f's running one joins the batched"
    );
    let single = claim(bus, store, claim_for("a", NOW, 100, 10)).await;
    assert_eq!(single.iter().map(|d| d.event_seq).collect::<Vec<_>>(), [9]);
    assert_eq!(
        mark(vec![]).await,
        5,
        "f's waiting and running ones stop being batched too"
    );

    // Event 2 went in batch b-1, whose record names event 1 first.
    let of_two = store
        .invocations(&mut bus.readers(), None, Some(2), 0, 100)
        .await
        .unwrap()
        .records;
    assert_eq!(
        of_two
            .iter()
            .map(|r| (r.request_id.as_str(), r.batch_size))
            .collect::<Vec<_>>(),
        [("b-1", Some(2))]
    );
}

/// The journal's retention takes the done deliveries of the events it removed, with the notes
/// of the batches they went in; dead letters and the deliveries of later events stay.
pub async fn done_deliveries_of_removed_events_go_and_dead_letters_stay(stores: Stores) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    create_of_f(bus, store, 4).await;
    let leased = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    let seqs: Vec<u64> = leased.iter().map(|l| l.event_seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    // Event 1's delivery went in a batch that failed (noted), then succeeded alone.
    let batch = InvocationRecord {
        delivery_id: None,
        event_seq: None,
        batch_size: Some(1),
        ..success(&leased[0], "batch-1")
    };
    let failed = Settlement::Retry {
        at_ms: NOW,
        error: "the batch failed".into(),
    };
    let mut in_batch = settled(&leased[0], failed, NOW, Some(batch));
    in_batch.batch = Some("batch-1".into());
    record(bus, store, vec![in_batch]).await;
    let again = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    assert_eq!(again.len(), 1);
    let dead = Settlement::Dead {
        reason: DeadReason::RetriesExhausted,
        error: "gave up".into(),
    };
    record(
        bus,
        store,
        vec![
            settled(&again[0], Settlement::Done, NOW, None),
            settled(&leased[1], dead, NOW, None),
            settled(&leased[2], Settlement::Done, NOW, None),
            settled(&leased[3], Settlement::Done, NOW, None),
        ],
    )
    .await;
    let batches_of_event_1 = || async {
        let page = store
            .invocations(&mut bus.readers(), None, Some(1), 0, 10)
            .await
            .unwrap();
        page.records.len()
    };
    assert_eq!(batches_of_event_1().await, 1);
    let remove = |through: u64| {
        bus.write((store.clone(), through), |tx, (store, through)| {
            // No invocation had been aged: what removing their deliveries sums is in
            // `old_invocations_are_summed_into_daily_usage_unless_a_kept_delivery_needs_them`.
            Box::pin(store.remove_done(tx, 0, *through, 0))
        })
    };
    let removed = remove(3).await.unwrap();
    assert_eq!(removed.deliveries, 2, "events 1 and 3's");
    let counts = store.counts(&mut bus.readers()).await.unwrap();
    assert_eq!((counts.done, counts.dead), (1, 1));
    for (seq, kept) in [(1, 0), (2, 1), (3, 0), (4, 1)] {
        let states = store.deliveries_of(&mut bus.readers(), seq).await.unwrap();
        assert_eq!(states.len(), kept, "event {seq}");
    }
    assert_eq!(batches_of_event_1().await, 0, "the batch's note went too");
    assert_eq!(
        remove(3).await.unwrap(),
        RemovedDone::default(),
        "nothing more to remove"
    );
}

/// The journal's retention removes the logs and answers of the invocations that started before
/// it, function by function; then sums into their day's usage and removes the records that
/// explain nothing kept. A dead letter's attempts and those of a delivery still kept stay, and
/// are summed when their delivery goes. Usage stays whole throughout.
pub async fn old_invocations_are_summed_into_daily_usage_unless_a_kept_delivery_needs_them(
    stores: Stores,
) {
    let (bus, store) = (&stores.bus, &stores.deliveries);
    const DAY: i64 = 86_400_000;
    // Two days on from the deliveries' time, so that yesterday is a day too.
    const AT: i64 = NOW + 2 * DAY;
    let ran = |function: &str, request_id: &str, start_ms: i64| InvocationRecord {
        request_id: request_id.into(),
        function: function.into(),
        delivery_id: None,
        event_seq: None,
        attempt: 1,
        start_ms,
        duration_us: 1_500,
        outcome: "success".into(),
        error_type: None,
        error: None,
        output: format!("{request_id} said something\n"),
        truncated: false,
        memory_mb: 256,
        billed_ms: 2,
        max_memory_mb: Some(40),
        init_us: None,
        batch_size: None,
        response: Some(format!("\"{request_id}\"")),
    };
    let alone = |record: InvocationRecord| Settle {
        delivery: None,
        settlement: Settlement::Done,
        now_ms: record.start_ms,
        record: Some(record),
        destination: None,
        batch: None,
    };
    // Events 1–4 have deliveries of f: 1's ends dead, 2's done; 3 and 4 go in a batch whose
    // record names 3's delivery, and which finishes 3 but not 4 (noted), which ends dead.
    create_of_f(bus, store, 4).await;
    let leased = claim(bus, store, claim_for("a", NOW, 10, 10)).await;
    let attempt = |leased: &Leased, request_id: &str, outcome: &str| InvocationRecord {
        delivery_id: Some(leased.id),
        event_seq: Some(leased.event_seq),
        outcome: outcome.into(),
        ..ran("f", request_id, AT - 20)
    };
    let dead = || Settlement::Dead {
        reason: DeadReason::RetriesExhausted,
        error: "gave up".into(),
    };
    let batch = InvocationRecord {
        batch_size: Some(2),
        ..attempt(&leased[2], "batch-3-4", "success")
    };
    let mut batched = [
        settled(&leased[2], Settlement::Done, NOW, Some(batch)),
        settled(&leased[3], dead(), NOW, None),
    ];
    for member in &mut batched {
        member.batch = Some("batch-3-4".into());
    }
    let [three, four] = batched;
    record(
        bus,
        store,
        vec![
            settled(
                &leased[0],
                dead(),
                NOW,
                Some(attempt(&leased[0], "dead-1", "error")),
            ),
            settled(
                &leased[1],
                Settlement::Done,
                NOW,
                Some(attempt(&leased[1], "done-2", "success")),
            ),
            three,
            four,
            alone(ran("f", "yesterday-f", AT - DAY)),
            alone(ran("f", "old-f", AT - 10)),
            alone(ran("g", "old-g", AT - 5)),
            alone(ran("f", "new-f", AT)),
        ],
    )
    .await;
    let usage = || async {
        let mut db = bus.readers();
        (
            store.invocation_totals(&mut db).await.unwrap(),
            store.invocation_days(&mut db).await.unwrap(),
        )
    };
    let whole = usage().await;
    let days: Vec<(i64, &str, u64)> = whole
        .1
        .iter()
        .map(|d| (d.day_ms, d.function.as_str(), d.count))
        .collect();
    let today = AT / DAY * DAY;
    assert_eq!(
        days,
        [(today - DAY, "f", 1), (today, "f", 5), (today, "g", 1)]
    );
    let kept = || async {
        let page = store
            .invocations(&mut bus.readers(), None, None, 0, 100)
            .await
            .unwrap();
        let mut kept: Vec<(String, bool)> = page
            .records
            .into_iter()
            .map(|r| (r.request_id, r.output.is_empty() && r.response.is_none()))
            .collect();
        kept.sort();
        kept
    };

    let clear = |from: i64, before: i64| {
        bus.write(
            (store.clone(), from, before),
            |tx, (store, from, before)| Box::pin(store.clear_logs(tx, *from, *before)),
        )
    };
    let sum = |from: i64, before: i64| {
        bus.write(
            (store.clone(), from, before),
            |tx, (store, from, before)| Box::pin(store.sum_usage(tx, *from, *before)),
        )
    };
    assert_eq!(clear(0, AT).await.unwrap(), 6, "all but new-f's");
    assert_eq!(clear(AT, AT).await.unwrap(), 0);
    assert_eq!(
        sum(0, AT).await.unwrap(),
        3,
        "yesterday's, old-f and old-g; not the attempts that kept deliveries are explained by"
    );
    let cleared = |id: &str| (id.to_string(), true);
    assert_eq!(
        kept().await,
        [
            cleared("batch-3-4"),
            cleared("dead-1"),
            cleared("done-2"),
            ("new-f".to_string(), false)
        ]
    );
    assert_eq!(usage().await, whole, "usage is whole");
    assert_eq!(sum(AT, AT).await.unwrap(), 0);

    // The retention removes events 1–4: 2's and 3's deliveries are done, and go. 2's attempt —
    // passed over by the summing — is summed with it; the batch that finished 3 stays, as 4's, a dead
    // letter, went in it; so does the dead letter 1's attempt.
    let removed = bus
        .write((store.clone(),), |tx, (store,)| {
            Box::pin(store.remove_done(tx, 0, 4, AT))
        })
        .await
        .unwrap();
    assert_eq!(
        removed,
        RemovedDone {
            deliveries: 2,
            summed: 1
        }
    );
    assert_eq!(
        kept().await,
        [
            cleared("batch-3-4"),
            cleared("dead-1"),
            ("new-f".to_string(), false)
        ]
    );
    assert_eq!(usage().await, whole, "usage is whole");
}
