//! The account's 2FA policy (SPEC §4): required or not, with an optional grace period.
//! Turning it on emails every user once (the store writes those emails only in the call that
//! turned it on, so two managers switching it on at once email everyone once); turning it
//! off changes no one's 2FA. How it applies to one user is [`super::enforcement`]. With the
//! team's SSO in `disable_sso` mode, turning it on also emails each SSO user a link to
//! choose a password (SPEC §12).

use super::{Acting, Team, TeamError};
use crate::Timestamp;
use crate::mail::Message;
use crate::model::{Account, EventKind, RequestMeta, SsoTwoFactor, TrustedDevices};
use crate::principal::grant::PolicyWrite;
use crate::store::Effects;
use crate::validate::FieldError;
use serde_json::json;

/// The policy as a manager sets it.
pub struct PolicyInput<'a> {
    pub required: bool,
    /// A date (`2026-12-01`, meaning the start of that day, UTC) or an RFC 3339 time.
    pub grace_period_until: Option<&'a str>,
}

/// The grace period's end, if one is given and makes sense at `now`.
fn grace_period(input: &PolicyInput<'_>, now: Timestamp) -> Result<Option<Timestamp>, FieldError> {
    let field = "grace_period_until";
    let grace = match input.grace_period_until.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(text) => Timestamp::parse_deadline(text).ok_or_else(|| {
            FieldError::new(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time")
        })?,
    };
    if !input.required {
        return Err(FieldError::new(
            field,
            "a grace period only applies when 2FA is required",
        ));
    }
    if grace <= now {
        return Err(FieldError::new(field, "must be in the future"));
    }
    Ok(Some(grace))
}

impl Team {
    /// Sets whether the account requires 2FA, and until when users may still skip it.
    pub async fn set_two_factor_policy<'a>(
        &self,
        who: impl Into<Acting<'a, PolicyWrite>>,
        input: PolicyInput<'_>,
        meta: &RequestMeta,
    ) -> Result<Account, TeamError> {
        let who = who.into();
        let ctx = &self.0;
        let now = ctx.now();
        let grace = grace_period(&input, now)?;
        let account = who.account();
        let detail = json!({
            "required": input.required,
            "grace_period_until": grace.map(Timestamp::to_rfc3339),
        });
        let effects =
            Effects::event(who.event(EventKind::TwoFactorPolicyChanged, meta, now, detail))
                .and(who.restarted(now));
        let mut turned_on = Effects::default();
        if input.required {
            for member in ctx.store.team_members(account.id).await? {
                let message = Message::TwoFactorRequired {
                    by: who.user().name.clone(),
                    deadline: grace,
                };
                turned_on =
                    turned_on.and_email(ctx.email_in(&member.user, account, meta, now, message));
            }
        }
        let updated = ctx
            .store
            .set_two_factor_policy(account.id, input.required, grace, &effects, &turned_on)
            .await?
            .ok_or(TeamError::NotFound)?;
        // `disable_sso` (SPEC §12): SSO is now off, so each SSO user gets a link to choose a
        // password. Each user's send window keeps two managers turning it on at once from
        // emailing anyone more than the window allows.
        if input.required
            && !account.two_factor_required
            && updated.sso_two_factor == SsoTwoFactor::DisableSso
        {
            for user in ctx.store.sso_users(account.id).await? {
                let message =
                    |token, expires_at| Message::SsoPasswordRequired { token, expires_at };
                ctx.send_reset_link(user, meta, now, message).await?;
            }
        }
        Ok(updated)
    }
}

impl Team {
    /// Sets whether the account's users may have devices skip the second step (SPEC §9).
    /// The policy is checked at every use, so forbidding it stops every trusted device at
    /// once; the store also ends their trust then, so allowing it again revives none. A
    /// 2FA policy, so a power of a [`crate::principal::RecoveryAdmin`] (SPEC §9: step-up), or
    /// of a key granted `policy:write`.
    pub async fn set_trusted_devices_policy<'a>(
        &self,
        who: impl Into<Acting<'a, PolicyWrite>>,
        policy: TrustedDevices,
        meta: &RequestMeta,
    ) -> Result<Account, TeamError> {
        let who = who.into();
        let ctx = &self.0;
        let now = ctx.now();
        let detail = json!({ "trusted_devices": policy.as_str() });
        let event = who.event(EventKind::TrustedDevicesPolicyChanged, meta, now, detail);
        let effects = Effects::event(event).and(who.restarted(now));
        ctx.store
            .set_trusted_devices_policy(who.account().id, policy, &effects)
            .await?
            .ok_or(TeamError::NotFound)
    }
}
