//! A code from the authenticator app, typed at the second step.

use super::{TotpCode, matching_step};
use crate::Timestamp;
use crate::ctx::{Ctx, Internal};
use crate::factors::{Checked, Method, Proof, SecondFactor};
use crate::model::{ChallengeKind, RequestMeta};
use crate::second_step::ChallengeContext;

pub(crate) struct Authenticator;

#[async_trait::async_trait]
impl SecondFactor for Authenticator {
    fn method(&self) -> Method {
        Method::Totp
    }

    fn answers(&self, kind: ChallengeKind) -> bool {
        kind == ChallengeKind::TwoFactor
    }

    fn read(&self, _ctx: &Ctx, answer: &str) -> Option<String> {
        TotpCode::parse(answer).map(|code| code.as_str().to_owned())
    }

    /// The step the code belongs to, if it is above the last accepted one; the store's
    /// spend decides under concurrency.
    async fn check(
        &self,
        ctx: &Ctx,
        challenge: &ChallengeContext,
        answer: &str,
        _meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Checked, Internal> {
        let (Some(factor), Some(code)) = (&challenge.totp, TotpCode::parse(answer)) else {
            return Ok(Checked::default());
        };
        let secret = ctx.open_secret(&challenge.user, &factor.secret_sealed)?;
        let matched = matching_step(&secret, &code, now);
        Ok(Checked {
            already_used: matched.is_some_and(|step| step <= factor.last_step),
            proof: matched
                .filter(|step| *step > factor.last_step)
                .map(|step| Proof::Totp { step }),
            device_token: None,
            counter_refused: None,
        })
    }
}
