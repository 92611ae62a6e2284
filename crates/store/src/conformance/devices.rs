//! Devices and device challenges on every backend: recognition bound to user, User-Agent
//! and lifetime; a resend that honours the wait once under a race.

use super::*;
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::crypto::Token;
use tessera_core::model::{
    Challenge, ChallengeId, ChallengeKind, Device, DeviceId, EventKind, NewEvent, RequestMeta, User,
};
use tessera_core::throttle::Window;
use tessera_core::throttle::send_window::{SendDecision, admit_send};

conformance!(
    a_device_is_recognized_for_its_user_agent_and_lifetime,
    a_resend_happens_once_per_wait_under_a_race,
    codes_are_limited_over_any_hour,
    only_the_latest_email_code_verifies_a_device,
    a_new_device_challenge_or_2fa_ends_the_open_one,
);

fn device(user: &User, user_agent: Option<&str>) -> Device {
    Device {
        id: DeviceId::new(),
        user_id: user.id,
        user_agent: user_agent.map(str::to_owned),
        ip: Some("192.0.2.1".into()),
        created_at: T0,
        last_used_at: T0,
        expires_at: T0.plus_secs(3600),
        trusted_until: None,
    }
}

/// The core's send window for `limit` at `now`, as the store gets it.
fn window(limit: Window, now: Timestamp) -> impl FnMut(&[Timestamp]) -> SendDecision + Send {
    move |sent| admit_send(sent, now, &limit)
}

/// A limit no test here reaches but the one about limits.
const PLENTY: Window = Window {
    max: 100,
    secs: 3600,
};

async fn device_challenge(store: &Arc<dyn Store>, user: &User, code_hash: &[u8]) -> Challenge {
    device_challenge_at(store, user, code_hash, T0, PLENTY)
        .await
        .0
}

async fn device_challenge_at(
    store: &Arc<dyn Store>,
    user: &User,
    code_hash: &[u8],
    at: Timestamp,
    limit: Window,
) -> (Challenge, CodeSent) {
    let challenge = Challenge {
        id: ChallengeId::new(),
        user_id: user.id,
        kind: ChallengeKind::Device,
        attempts: 0,
        created_at: at,
        expires_at: at.plus_secs(600),
        last_sent_at: Some(at),
        meta: RequestMeta::default(),
        device_id: None,
    };
    let sent = store
        .create_device_challenge(
            &challenge,
            &Token::generate().hash(),
            code_hash,
            &mut window(limit, at),
            &Effects::default(),
        )
        .await
        .unwrap();
    (challenge, sent)
}

/// Verifies a device through an email-code challenge: the completion.
async fn verify(
    store: &Arc<dyn Store>,
    user: &User,
    challenge: &Challenge,
    code_hash: &[u8],
    d: &Device,
    token: &Token,
) -> Attempted {
    let proof = Proof::EmailCode {
        hash: code_hash.to_vec(),
        device: d.clone(),
        token: token.hash(),
    };
    let effects = Effects::event(NewEvent::for_user(
        user,
        EventKind::DeviceVerified,
        &RequestMeta::default(),
        T0,
    ));
    let completing = Completing {
        proof: &proof,
        session: &session(user, T0.plus_secs(60)),
        token: &Token::generate().hash(),
        device: None,
        effects: &effects,
    };
    super::second_step::attempt(store, challenge.id, T0.plus_secs(1), Some(completing)).await
}

async fn a_device_is_recognized_for_its_user_agent_and_lifetime(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let (_, bob) = signup(&store, "bob@example.com").await;
    let challenge = device_challenge(&store, &ada, &[1; 32]).await;
    let d = device(&ada, Some("Firefox/140"));
    let token = Token::generate();
    assert_eq!(
        verify(&store, &ada, &challenge, &[1; 32], &d, &token).await,
        Attempted::Done
    );

    let used = |user: &User, ua: Option<&'static str>, at: i64| {
        let (store, hash, id) = (Arc::clone(&store), token.hash(), user.id);
        async move {
            store
                .use_device(id, &hash, ua, T0.plus_secs(at))
                .await
                .unwrap()
        }
    };
    let found = used(&ada, Some("Firefox/140"), 10)
        .await
        .expect("recognized");
    assert_eq!((found.id, found.last_used_at), (d.id, T0.plus_secs(10)));
    assert!(
        used(&ada, Some("Firefox/141"), 10).await.is_none(),
        "another browser version"
    );
    assert!(used(&ada, None, 10).await.is_none(), "no User-Agent at all");
    assert!(
        used(&bob, Some("Firefox/140"), 10).await.is_none(),
        "another user"
    );
    assert!(
        used(&ada, Some("Firefox/140"), 3600).await.is_none(),
        "lapsed"
    );
    assert_eq!(store.list_devices(ada.id, T0).await.unwrap().len(), 1);
    assert!(
        store
            .list_devices(ada.id, T0.plus_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );

    // A device verified without a User-Agent is recognized only without one.
    let challenge = device_challenge(&store, &bob, &[2; 32]).await;
    let bare = device(&bob, None);
    let bare_token = Token::generate();
    assert_eq!(
        verify(&store, &bob, &challenge, &[2; 32], &bare, &bare_token).await,
        Attempted::Done
    );
    let hash = bare_token.hash();
    assert!(
        store
            .use_device(bob.id, &hash, None, T0)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .use_device(bob.id, &hash, Some("x"), T0)
            .await
            .unwrap()
            .is_none()
    );

    // Forgotten: not recognized any more, and only its owner can forget it.
    assert!(
        !store
            .delete_device(bob.id, d.id, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_device(ada.id, d.id, &Effects::default())
            .await
            .unwrap()
    );
    assert!(used(&ada, Some("Firefox/140"), 10).await.is_none());
}

async fn a_resend_happens_once_per_wait_under_a_race(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let challenge = device_challenge(&store, &ada, &[1; 32]).await;
    let now = T0.plus_secs(30);
    let too_soon = store
        .resend_device_code(
            ada.id,
            challenge.id,
            &[9; 32],
            T0.plus_secs(29),
            T0.plus_secs(-1),
            T0.plus_secs(900),
            &mut window(PLENTY, T0.plus_secs(29)),
            &Effects::default(),
        )
        .await
        .unwrap();
    assert_eq!(too_soon, CodeSent::NotNow);
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let (store, user) = (Arc::clone(&store), ada.id);
            tokio::spawn(async move {
                store
                    .resend_device_code(
                        user,
                        challenge.id,
                        &[i + 10; 32],
                        now,
                        T0,
                        T0.plus_secs(900),
                        &mut window(PLENTY, now),
                        &Effects::default(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut resent = 0;
    for t in tasks {
        resent += usize::from(t.await.unwrap() == CodeSent::Sent);
    }
    assert_eq!(resent, 1, "one resend per wait");
}

async fn codes_are_limited_over_any_hour(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let limit = Window { max: 5, secs: 3600 };
    let send = |at: i64| {
        let (store, ada) = (Arc::clone(&store), ada.clone());
        async move {
            device_challenge_at(&store, &ada, &[1; 32], T0.plus_secs(at), limit)
                .await
                .1
        }
    };
    // One at the start of the hour, four at its end: the fifth of the next hour's start may
    // go only once the first has left the window, and no more until the others do.
    assert_eq!(send(0).await, CodeSent::Sent);
    for _ in 0..4 {
        assert_eq!(send(3590).await, CodeSent::Sent);
    }
    assert_eq!(send(3599).await, CodeSent::Limited(T0.plus_secs(3600)));
    assert_eq!(send(3600).await, CodeSent::Sent);
    assert_eq!(send(3601).await, CodeSent::Limited(T0.plus_secs(7190)));
    // Concurrent sends cannot pass the limit either.
    let tasks: Vec<_> = (0..8).map(|_| tokio::spawn(send(20_000))).collect();
    let mut sent = 0;
    for t in tasks {
        sent += usize::from(t.await.unwrap() == CodeSent::Sent);
    }
    assert_eq!(sent, 5);
}

async fn only_the_latest_email_code_verifies_a_device(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let challenge = device_challenge(&store, &ada, &[1; 32]).await;
    let resent = store
        .resend_device_code(
            ada.id,
            challenge.id,
            &[2; 32],
            T0.plus_secs(30),
            T0,
            T0.plus_secs(900),
            &mut window(PLENTY, T0.plus_secs(30)),
            &Effects::default(),
        )
        .await
        .unwrap();
    assert_eq!(resent, CodeSent::Sent);
    let d = device(&ada, Some("UA"));
    let token = Token::generate();
    assert_eq!(
        verify(&store, &ada, &challenge, &[1; 32], &d, &token).await,
        Attempted::Rejected { attempts: 1 },
        "the replaced code"
    );
    assert!(
        store.list_devices(ada.id, T0).await.unwrap().is_empty(),
        "rolled back"
    );
    assert_eq!(
        verify(&store, &ada, &challenge, &[2; 32], &d, &token).await,
        Attempted::Done
    );
    assert_eq!(
        verify(&store, &ada, &challenge, &[2; 32], &d, &Token::generate()).await,
        Attempted::ChallengeGone,
        "used once"
    );
    let events = store.user_events(ada.id, None, 10).await.unwrap();
    assert_eq!(events[0].kind, EventKind::DeviceVerified);
}

async fn a_new_device_challenge_or_2fa_ends_the_open_one(store: Arc<dyn Store>, _: String) {
    let (_, ada) = signup(&store, "ada@example.com").await;
    let first = device_challenge(&store, &ada, &[1; 32]).await;
    let second = device_challenge(&store, &ada, &[2; 32]).await;
    let d = device(&ada, Some("UA"));
    let token = Token::generate();
    assert_eq!(
        verify(&store, &ada, &first, &[1; 32], &d, &token).await,
        Attempted::ChallengeGone,
        "replaced by the second sign-in"
    );
    // 2FA turned on with the second challenge still open: its code no longer signs in.
    let enrollment = Enrollment {
        secret_sealed: vec![7; 60],
        paper_key_hash: vec![8; 32],
        created_at: T0,
        expires_at: T0.plus_secs(1800),
    };
    store
        .put_enrollment(ada.id, &enrollment, &Effects::default())
        .await
        .unwrap();
    store
        .activate_totp(ada.id, &[7; 60], T0, 1, &[], &Effects::default())
        .await
        .unwrap();
    assert_eq!(
        verify(&store, &ada, &second, &[2; 32], &d, &token).await,
        Attempted::ChallengeGone
    );
    assert!(store.list_devices(ada.id, T0).await.unwrap().is_empty());
}
