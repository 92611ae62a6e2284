//! Recovery codes (SPEC §2): ten one-time codes (`xxxxx-xxxxx`, or 8-digit backup codes),
//! issued when 2FA goes on and on request, each accepted once in place of a factor's code.
//! Stored as keyed hashes bound to the user ([`CodePurpose::Recovery`]).

use super::{Checked, Method, OnSuccess, Proof, SecondFactor};
use crate::Timestamp;
use crate::codes::CodePurpose;
use crate::ctx::{Ctx, Internal};
use crate::mail::Message;
use crate::model::{Account, ChallengeKind, EventKind, NewEvent, RequestMeta, User};
use crate::second_step::ChallengeContext;
use crate::store::Effects;
use async_trait::async_trait;
use serde_json::json;

/// The hashes of a new set of codes, to store.
pub(crate) fn hashes(ctx: &Ctx, user: &User, codes: &[String]) -> Vec<Vec<u8>> {
    codes
        .iter()
        .filter_map(|c| ctx.policy.recovery_code_format.normalize(c))
        .map(|n| ctx.code_hash(CodePurpose::Recovery, user.id, &n))
        .collect()
}

/// A recovery code typed at the second step.
pub(crate) struct RecoveryCode;

#[async_trait]
impl SecondFactor for RecoveryCode {
    fn method(&self) -> Method {
        Method::RecoveryCode
    }

    fn answers(&self, kind: ChallengeKind) -> bool {
        kind == ChallengeKind::TwoFactor
    }

    fn read(&self, ctx: &Ctx, answer: &str) -> Option<String> {
        ctx.policy.recovery_code_format.normalize(answer)
    }

    /// Whether it is unused is for the store's spend to say.
    async fn check(
        &self,
        ctx: &Ctx,
        challenge: &ChallengeContext,
        answer: &str,
        _meta: &RequestMeta,
        _now: Timestamp,
    ) -> Result<Checked, Internal> {
        let hash = ctx.code_hash(CodePurpose::Recovery, challenge.user.id, answer);
        Ok(Checked {
            proof: Some(Proof::RecoveryCode { hash }),
            ..Checked::default()
        })
    }

    /// The event and email of a used code, with how many are left.
    async fn on_success(
        &self,
        ctx: &Ctx,
        user: &User,
        account: &Account,
        _proof: Option<&Proof>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<OnSuccess, Internal> {
        let left = ctx
            .store
            .two_factor_status(user.id, now)
            .await?
            .recovery_codes_remaining
            .saturating_sub(1)
            .max(0);
        let event = NewEvent::for_user(user, EventKind::RecoveryCodeUsed, meta, now)
            .with_detail(json!({ "remaining": left }));
        let message = Message::RecoveryCodeUsed {
            remaining: u32::try_from(left).unwrap_or(0),
        };
        Ok(OnSuccess {
            effects: Effects::event(event)
                .and_email(ctx.email_in(user, account, meta, now, message)),
            recovery_codes_remaining: Some(left),
        })
    }
}
