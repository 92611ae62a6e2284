//! The OpenID Connect provider's storage on every backend: a code is spent once however many
//! exchanges race, a second use revokes its family, refresh tokens rotate and a reused one
//! revokes the family, one current signing key per algorithm, clients by owner.

use super::*;
use tessera_core::oidc_provider::{ClientRow, CodeRow, Grant, NewTokens, SigningKeyRow, Spent};

conformance!(
    a_code_is_spent_once_under_a_race_and_a_second_use_revokes_its_tokens,
    a_reused_refresh_token_revokes_its_family,
    one_current_signing_key_per_algorithm_and_rotation_retires_it,
    clients_belong_to_the_operator_or_one_team,
    housekeeping_deletes_codes_and_tokens_past_their_end,
);

fn client(account: Option<AccountId>) -> ClientRow {
    ClientRow {
        id: format!("tsc_{}", uuid::Uuid::new_v4().simple()),
        account_id: account,
        name: "App".into(),
        secret_hash: Some(vec![7; 32]),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/".into()],
        id_token_alg: "RS256".into(),
        created_at: T0,
    }
}

fn grant(client: &ClientRow, user: &User) -> Grant {
    Grant {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        user_id: user.id,
        session_id: None,
        scope: "openid email".into(),
        auth_time: T0,
        amr: "pwd otp mfa".into(),
    }
}

fn tokens(grant: &Grant, now: Timestamp) -> (Token, Token, NewTokens) {
    let (access, refresh) = (Token::generate(), Token::generate());
    let new = NewTokens {
        grant: grant.clone(),
        access: access.hash(),
        access_expires_at: now.plus_secs(600),
        refresh: Some((refresh.hash(), now.plus_secs(3600))),
        now,
    };
    (access, refresh, new)
}

async fn with_client(store: &Arc<dyn Store>, email: &str) -> (User, ClientRow) {
    let (_, user) = signup(store, email).await;
    let c = client(None);
    store.create_client(&c, &Effects::default()).await.unwrap();
    (user, c)
}

async fn a_code_is_spent_once_under_a_race_and_a_second_use_revokes_its_tokens(
    store: Arc<dyn Store>,
    _: String,
) {
    let (user, c) = with_client(&store, "ada@example.com").await;
    let g = grant(&c, &user);
    let code = Token::generate();
    let row = CodeRow {
        grant: g.clone(),
        redirect_uri: "https://app.example/cb".into(),
        nonce: Some("n".into()),
        code_challenge: None,
        created_at: T0,
        expires_at: T0.plus_secs(60),
    };
    store
        .create_code(&code.hash(), &row, &Effects::default())
        .await
        .unwrap();
    let (found, used) = store.find_code(&code.hash()).await.unwrap().unwrap();
    assert_eq!(
        (found.grant.amr.as_str(), found.nonce.as_deref(), used),
        ("pwd otp mfa", Some("n"), false)
    );
    let now = T0.plus_secs(5);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let hash = code.hash();
            let g = g.clone();
            tokio::spawn(async move {
                let (access, _, new) = tokens(&g, now);
                let spent = store
                    .spend_code(&hash, &new, &Effects::default(), &Effects::default())
                    .await
                    .unwrap();
                (spent, access)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (spent, access) = task.await.unwrap();
        match spent {
            Spent::Done => winners.push(access),
            Spent::Reused => {}
            Spent::Unknown => panic!("a used code is known"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one exchange wins");
    // The losers revoked what the winner got.
    assert!(
        store
            .find_access_token(&winners[0].hash(), now)
            .await
            .unwrap()
            .is_none()
    );

    // An expired code is unknown, and revokes nothing.
    let late = Token::generate();
    let mut row = row.clone();
    row.grant = grant(&c, &user);
    store
        .create_code(&late.hash(), &row, &Effects::default())
        .await
        .unwrap();
    let (_, _, new) = tokens(&row.grant, T0.plus_secs(60));
    let spent = store
        .spend_code(&late.hash(), &new, &Effects::default(), &Effects::default())
        .await
        .unwrap();
    assert_eq!(spent, Spent::Unknown);
}

async fn a_reused_refresh_token_revokes_its_family(store: Arc<dyn Store>, _: String) {
    let (user, c) = with_client(&store, "ada@example.com").await;
    let g = grant(&c, &user);
    let code = Token::generate();
    let row = CodeRow {
        grant: g.clone(),
        redirect_uri: "https://app.example/cb".into(),
        nonce: None,
        code_challenge: Some("x".into()),
        created_at: T0,
        expires_at: T0.plus_secs(60),
    };
    store
        .create_code(&code.hash(), &row, &Effects::default())
        .await
        .unwrap();
    let (access1, refresh1, new) = tokens(&g, T0);
    assert_eq!(
        store
            .spend_code(&code.hash(), &new, &Effects::default(), &Effects::default())
            .await
            .unwrap(),
        Spent::Done
    );
    let found = store
        .find_access_token(&access1.hash(), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.grant.id, g.id);
    assert!(
        store
            .find_access_token(&access1.hash(), T0.plus_secs(600))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    // Rotation: the refresh token is spent once.
    let (access2, refresh2, new) = tokens(&g, T0.plus_secs(10));
    assert_eq!(
        store
            .spend_refresh_token(
                &refresh1.hash(),
                &new,
                &Effects::default(),
                &Effects::default()
            )
            .await
            .unwrap(),
        Spent::Done
    );
    let (_, spent) = store
        .find_refresh_token(&refresh1.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(spent);
    assert!(
        store
            .find_access_token(&access2.hash(), T0.plus_secs(10))
            .await
            .unwrap()
            .is_some()
    );
    // The first one again: the family is revoked, the new tokens too.
    let (_, _, new) = tokens(&g, T0.plus_secs(20));
    assert_eq!(
        store
            .spend_refresh_token(
                &refresh1.hash(),
                &new,
                &Effects::default(),
                &Effects::default()
            )
            .await
            .unwrap(),
        Spent::Reused
    );
    assert!(
        store
            .find_access_token(&access2.hash(), T0.plus_secs(20))
            .await
            .unwrap()
            .is_none()
    );
    let (_, _, new) = tokens(&g, T0.plus_secs(30));
    assert_eq!(
        store
            .spend_refresh_token(
                &refresh2.hash(),
                &new,
                &Effects::default(),
                &Effects::default()
            )
            .await
            .unwrap(),
        Spent::Reused,
        "the rotated token is revoked with its family"
    );
    // Removing the client removes its tokens.
    assert!(
        store
            .remove_client(&c.id, None, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .find_refresh_token(&refresh2.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.find_client(&c.id).await.unwrap().is_none());
}

fn key(alg: &str, at: Timestamp) -> SigningKeyRow {
    SigningKeyRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        alg: alg.into(),
        private_sealed: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: at,
        retired_at: None,
    }
}

async fn one_current_signing_key_per_algorithm_and_rotation_retires_it(
    store: Arc<dyn Store>,
    _: String,
) {
    let first = key("RS256", T0);
    assert!(
        store
            .add_signing_key(&first, false, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_signing_key(&key("RS256", T0), false, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .add_signing_key(&key("ES256", T0), false, &Effects::default())
            .await
            .unwrap()
    );
    let second = key("RS256", T0.plus_secs(100));
    assert!(
        store
            .add_signing_key(&second, true, &Effects::default())
            .await
            .unwrap()
    );
    let published = store.signing_keys(T0.plus_secs(50)).await.unwrap();
    assert_eq!(published.len(), 3, "the retired key is still published");
    let old = published.iter().find(|k| k.id == first.id).unwrap();
    assert_eq!(old.retired_at, Some(T0.plus_secs(100)));
    let later = store.signing_keys(T0.plus_secs(100)).await.unwrap();
    assert!(later.iter().all(|k| k.id != first.id), "then it is gone");
}

async fn clients_belong_to_the_operator_or_one_team(store: Arc<dyn Store>, _: String) {
    let (a, _) = signup(&store, "ada@example.com").await;
    let (b, _) = signup(&store, "bob@example.com").await;
    let operator = client(None);
    let team = client(Some(a.id));
    for c in [&operator, &team] {
        store.create_client(c, &Effects::default()).await.unwrap();
    }
    let found = store.find_client(&team.id).await.unwrap().unwrap();
    assert_eq!(found.redirect_uris, team.redirect_uris);
    assert_eq!(found.account_id, Some(a.id));
    assert_eq!(found.secret_hash, team.secret_hash);
    let ids = |cs: Vec<ClientRow>| cs.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_clients(None).await.unwrap()),
        std::slice::from_ref(&operator.id)
    );
    assert_eq!(
        ids(store.list_clients(Some(a.id)).await.unwrap()),
        std::slice::from_ref(&team.id)
    );
    assert!(store.list_clients(Some(b.id)).await.unwrap().is_empty());
    assert!(
        !store
            .remove_client(&team.id, Some(b.id), &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_client(&team.id, None, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_client(&team.id, Some(a.id), &Effects::default())
            .await
            .unwrap()
    );
}

async fn housekeeping_deletes_codes_and_tokens_past_their_end(store: Arc<dyn Store>, _: String) {
    use tessera_core::housekeeping::Sweep;
    let (user, c) = with_client(&store, "ada@example.com").await;
    let g = grant(&c, &user);
    let code = Token::generate();
    let row = CodeRow {
        grant: g.clone(),
        redirect_uri: "https://app.example/cb".into(),
        nonce: None,
        code_challenge: None,
        created_at: T0,
        expires_at: T0.plus_secs(60),
    };
    store
        .create_code(&code.hash(), &row, &Effects::default())
        .await
        .unwrap();
    let (access, refresh, new) = tokens(&g, T0);
    let none = Effects::default();
    let spent = store.spend_code(&code.hash(), &new, &none, &none).await;
    assert_eq!(spent.unwrap(), Spent::Done);
    assert_eq!(
        store
            .sweep(Sweep::OidcCodes, T0.plus_secs(59), 10)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .sweep(Sweep::OidcCodes, T0.plus_secs(60), 10)
            .await
            .unwrap(),
        1
    );
    // The access token ends after 600 s, the refresh token after 3600 s.
    assert_eq!(
        store
            .sweep(Sweep::OidcTokens, T0.plus_secs(600), 10)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .find_access_token(&access.hash(), T0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_token(&refresh.hash())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .sweep(Sweep::OidcTokens, T0.plus_secs(3600), 10)
            .await
            .unwrap(),
        1
    );
}
