//! Concurrent administration (review D7): a user deleted while signing in, and two admins
//! deleting each other, get clear answers (4xx), never a 500 from a foreign key; and the
//! outcome is one the rules allow.

use crate::helpers::{PASSWORD, ResponseExt, TestApp};
use reqwest::StatusCode;

backend_tests!(
    a_user_deleted_while_signing_in_gets_a_clear_answer,
    a_user_deleted_during_the_second_step_gets_a_clear_answer,
    two_admins_deleting_each_other_get_clear_answers,
);

const ROUNDS: usize = 3;

async fn a_user_deleted_while_signing_in_gets_a_clear_answer(app: TestApp) {
    // Deleting a user is a recovery power: the owner has 2FA (review F6).
    let owner = app.owner_with_2fa("owner@example.com").await;
    for round in 0..ROUNDS {
        let email = format!("member{round}@example.com");
        let (id, _) = app.join(&owner, &email, "member").await;
        let mut sign_ins = Vec::new();
        for _ in 0..8 {
            let (api, email) = (app.api(), email.clone());
            sign_ins.push(tokio::spawn(async move {
                api.login(&email, PASSWORD).await.status()
            }));
        }
        let deleted = app.delete_user(&owner, &id).await.status();
        assert_eq!(deleted, StatusCode::NO_CONTENT);
        for sign_in in sign_ins {
            let status = sign_in.await.unwrap();
            assert!(
                [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&status),
                "a sign-in racing the deletion answered {status}"
            );
        }
        // Whatever won, the user is gone now.
        assert_eq!(
            app.login(&email, PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

/// The second step of a user deleted meanwhile (on PostgreSQL, answered in one statement
/// when nothing changed since its read, else in its transaction): a sign-in or a refusal,
/// never a failure, and no session outlives the user.
async fn a_user_deleted_during_the_second_step_gets_a_clear_answer(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    for round in 0..ROUNDS {
        let email = format!("second{round}@example.com");
        let (id, member) = app.join(&owner, &email, "member").await;
        let Some(factor) = app.enable_2fa(&member).await else {
            return;
        };
        let mut answers = Vec::new();
        for _ in 0..4 {
            let challenge = app.two_factor_challenge(&email).await;
            let (api, code) = (app.api(), app.totp(&factor));
            answers.push(tokio::spawn(async move {
                let response = api.verify(&challenge, &code).await;
                let status = response.status();
                let token = response.body().await["session_token"]
                    .as_str()
                    .map(str::to_owned);
                (status, token)
            }));
        }
        let deleted = app.delete_user(&owner, &id).await.status();
        assert_eq!(deleted, StatusCode::NO_CONTENT);
        for answer in answers {
            let (status, token) = answer.await.unwrap();
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::CONFLICT
                ]
                .contains(&status),
                "a second step racing the deletion answered {status}"
            );
            if let Some(token) = token {
                assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
            }
        }
    }
}

async fn two_admins_deleting_each_other_get_clear_answers(app: TestApp) {
    let owner = app.owner_with_2fa("owner@example.com").await;
    for round in 0..ROUNDS {
        let (a_id, a) = app
            .join(&owner, &format!("a{round}@example.com"), "admin")
            .await;
        let (b_id, b) = app
            .join(&owner, &format!("b{round}@example.com"), "admin")
            .await;
        // Each admin needs 2FA of their own to delete a user (review F6).
        app.enable_2fa(&a).await.expect("oathtool");
        app.enable_2fa(&b).await.expect("oathtool");
        let (api_a, api_b) = (app.api(), app.api());
        let a_deletes_b = tokio::spawn(async move { api_a.delete_user(&a, &b_id).await.status() });
        let b_deletes_a = tokio::spawn(async move { api_b.delete_user(&b, &a_id).await.status() });
        let answers = [a_deletes_b.await.unwrap(), b_deletes_a.await.unwrap()];
        for status in answers {
            assert!(
                [
                    StatusCode::NO_CONTENT,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::NOT_FOUND,
                    StatusCode::CONFLICT
                ]
                .contains(&status),
                "answers {answers:?}"
            );
        }
        let deleted = answers
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count();
        assert!(deleted <= 1, "never both: {answers:?}");
        // Whoever is left is listed, and is the only one of the two.
        let users = app.users(&owner).await;
        let listed: serde_json::Value = users.json().await.unwrap();
        let left = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| {
                let email = u["email"].as_str().unwrap();
                email == format!("a{round}@example.com") || email == format!("b{round}@example.com")
            })
            .count();
        assert_eq!(left, 2 - deleted, "{answers:?}");
    }
}
