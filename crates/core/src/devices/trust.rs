//! Trusted devices for 2FA (SPEC §9): "Don't ask again on this device for 30 days".
//!
//! ## The trust of one device
//! - Granted at a second step answered with a factor of a user with 2FA (not an emailed
//!   code: a user without 2FA has nothing to skip) when `remember_device` is ticked and the
//!   account's policy is `allowed`: the device the password was given from (or, if it was
//!   not known, the device that step makes known) gets `trusted_until = now + 30 days`.
//! - Used at password sign-in: a user with 2FA whose device token names their device, from
//!   the same User-Agent, before `trusted_until`, while the account's policy is `allowed`
//!   (read at each use, so forbidding it ends every trust at once), signs in without the
//!   second step (`method: trusted_device`). The team's 2FA *setup* requirement is never
//!   skipped: trust is only looked at for users who have 2FA on.
//! - Ended by the user on the device list, by forgetting the device, and by the store when
//!   the password changes or is reset and when 2FA goes off (by the user, the recovery
//!   page, an admin's reset or the operator): `trusted_until` is cleared in the transaction
//!   of that change.
//!
//! What a second step does to its device (known: trusted in place; new: recognized from now
//! on, a *new sign-in* alert) is decided here too ([`Ctx::second_step_device`]). Only the
//! device token's hash is stored, as for every recognized device.

use super::{DeviceError, Devices};
use crate::Timestamp;
use crate::crypto::{Token, TokenHash};
use crate::ctx::{Ctx, Internal};
use crate::mail::Message;
use crate::model::{
    Account, Challenge, Device, DeviceId, EventKind, NewEvent, RequestMeta, TrustedDevices, User,
};
use crate::principal::FullSession;
use crate::second_step::DeviceWrite;
use crate::sessions::{Opening, SignInMethod, SignedIn};
use crate::store::Effects;
use serde_json::json;

impl Ctx {
    /// The user's device `token` names, if it is still recognized for this request's
    /// browser (its last use becomes now).
    pub(crate) async fn known_device(
        &self,
        user: &User,
        token: Option<&str>,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Option<Device>, Internal> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let hash: TokenHash = Token::from_client(token).hash();
        Ok(self
            .store
            .use_device(user.id, &hash, meta.user_agent.as_deref(), now)
            .await?)
    }

    /// Signs in a user with 2FA from a device trusted to skip the second step.
    pub(crate) async fn trusted_sign_in(
        &self,
        user: User,
        account: Account,
        device: &Device,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<SignedIn, Internal> {
        let mut opening = self.opening(user, account, true, SignInMethod::TrustedDevice, meta, now);
        for event in &mut opening.effects.events {
            event.detail["device_id"] = json!(device.id);
        }
        self.store
            .create_session(
                &opening.context.session,
                &opening.token.hash(),
                &opening.effects,
            )
            .await?;
        Ok(opening.signed_in())
    }

    /// Until when a device trusted now would skip the second step.
    pub(crate) fn trust_until(&self, now: Timestamp) -> Timestamp {
        now.plus_secs(self.policy.trusted_device_secs)
    }

    /// What a second step passed with a factor writes for its device: trust for the known
    /// device it came from, or a new device (a new sign-in, with its alert); its token if
    /// new; and the events (and alert) that go with it.
    pub(crate) fn second_step_device(
        &self,
        opening: &Opening,
        challenge: &Challenge,
        remember_device: bool,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> (Option<DeviceWrite>, Option<Token>, Effects) {
        let (user, account) = (&opening.context.user, &opening.context.account);
        let trusted_until = (remember_device && account.trusted_devices == TrustedDevices::Allowed)
            .then(|| self.trust_until(now));
        let mut effects = Effects::default();
        let (write, token) = match challenge.device_id {
            Some(device) => (
                trusted_until.map(|until| DeviceWrite::Trust { device, until }),
                None,
            ),
            None => {
                let token = Token::generate();
                let mut device = self.new_device(user, meta, now);
                device.trusted_until = trusted_until;
                effects = effects
                    .and_event(
                        NewEvent::for_user(user, EventKind::NewDeviceSignIn, meta, now)
                            .with_detail(
                                json!({ "device_id": device.id, "user_agent": device.user_agent }),
                            ),
                    )
                    .and_alert(self.alert(user, account, meta, (now, now), Message::NewSignIn));
                let hash = token.hash();
                (
                    Some(DeviceWrite::New {
                        device,
                        token: hash,
                    }),
                    Some(token),
                )
            }
        };
        if let (Some(until), Some(write)) = (trusted_until, &write) {
            let device = match write {
                DeviceWrite::New { device, .. } => device.id,
                DeviceWrite::Trust { device, .. } => *device,
            };
            effects = effects.and_event(
                NewEvent::for_user(user, EventKind::DeviceTrusted, meta, now).with_detail(
                    json!({ "device_id": device, "trusted_until": until.to_rfc3339() }),
                ),
            );
        }
        (write, token, effects)
    }
}

impl Devices {
    /// Stops a device from skipping the second step; it stays recognized.
    pub async fn stop_trusting(
        &self,
        me: &FullSession,
        device: DeviceId,
        meta: &RequestMeta,
    ) -> Result<(), DeviceError> {
        let event = me
            .event(EventKind::DeviceTrustEnded, meta, self.0.now())
            .with_detail(json!({ "device_id": device, "reason": "stopped_by_user" }));
        if self
            .0
            .store
            .stop_trusting_device(me.user().id, device, &Effects::event(event))
            .await?
        {
            Ok(())
        } else {
            Err(DeviceError::NotFound)
        }
    }
}
