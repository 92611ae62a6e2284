//! The throttles as the use cases pass them: each rule of [`super`] run under the store's row
//! lock, so concurrent requests see each other's counts.

use super::{Lockout, RetryAt, Scope, Window, scope::ip_key};
use crate::Timestamp;
use crate::ctx::{Ctx, Internal};
use crate::model::RequestMeta;
use crate::store::Effects;

impl Ctx {
    /// Counts an attempt against a consecutive-failure lock before its secret is checked.
    pub(crate) async fn lockout_admit(
        &self,
        scope: Scope,
        key: &str,
        lockout: Lockout,
        now: Timestamp,
    ) -> Result<Result<(), RetryAt>, Internal> {
        let mut admitted = Ok(());
        self.store
            .update_throttle(scope, key, &mut |state| {
                let (next, verdict) = super::admit(state, now, &lockout);
                admitted = verdict;
                (next, Effects::default())
            })
            .await?;
        Ok(admitted)
    }

    /// Counts an attempt from the client's address before it is checked (SPEC §3: failed
    /// sign-ins per IP); a success gives it back with [`Ctx::ip_refund`].
    pub(crate) async fn ip_admit(
        &self,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<Result<(), RetryAt>, Internal> {
        let window = self.policy.ip_window();
        let mut admitted = Ok(());
        self.store
            .update_throttle(Scope::Ip, &ip_key(meta), &mut |state| {
                let (next, verdict) = super::window_admit(state, now, &window);
                admitted = verdict;
                (next, Effects::default())
            })
            .await?;
        Ok(admitted)
    }

    /// Counts one use of a [`super::Window`] under `key`, or refuses it while the window is
    /// full.
    pub(crate) async fn window_admit(
        &self,
        scope: Scope,
        key: &str,
        window: Window,
        now: Timestamp,
    ) -> Result<Result<(), RetryAt>, Internal> {
        let mut admitted = Ok(());
        self.store
            .update_throttle(scope, key, &mut |state| {
                let (next, verdict) = super::window_admit(state, now, &window);
                admitted = verdict;
                (next, Effects::default())
            })
            .await?;
        Ok(admitted)
    }

    /// Gives back a use counted by [`Ctx::window_admit`] that did not happen after all.
    pub(crate) async fn window_refund(&self, scope: Scope, key: &str) -> Result<(), Internal> {
        self.store
            .update_throttle(scope, key, &mut |state| {
                (super::window_refund(state), Effects::default())
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn ip_refund(&self, meta: &RequestMeta) -> Result<(), Internal> {
        self.store
            .update_throttle(Scope::Ip, &ip_key(meta), &mut |state| {
                (super::window_refund(state), Effects::default())
            })
            .await?;
        Ok(())
    }

    /// Records a failure with its `effects`; `true` when this one locked, in which case
    /// `on_lock` (the lock's event and email) is written too, all in the transaction that
    /// counts the failure.
    pub(crate) async fn lockout_failure(
        &self,
        scope: Scope,
        key: &str,
        lockout: Lockout,
        now: Timestamp,
        (effects, on_lock): (Effects, Effects),
    ) -> Result<bool, Internal> {
        let mut locked_now = false;
        self.store
            .update_throttle(scope, key, &mut |state| {
                let (next, locked) = super::failure(state, now, &lockout);
                locked_now = locked;
                let written = if locked {
                    effects.clone().and(on_lock.clone())
                } else {
                    effects.clone()
                };
                (next, written)
            })
            .await?;
        Ok(locked_now)
    }

    pub(crate) async fn lockout_success(&self, scope: Scope, key: &str) -> Result<(), Internal> {
        self.store
            .update_throttle(scope, key, &mut |state| {
                (super::success(state), Effects::default())
            })
            .await?;
        Ok(())
    }
}

impl Ctx {
    /// Counts a request from the client's address in a window of its own `scope` (sign-ups
    /// per address, SPEC §8), or refuses it while the window is full.
    pub(crate) async fn address_admit(
        &self,
        scope: Scope,
        meta: &RequestMeta,
        window: super::Window,
        now: Timestamp,
    ) -> Result<Result<(), RetryAt>, Internal> {
        let mut admitted = Ok(());
        self.store
            .update_throttle(scope, &ip_key(meta), &mut |state| {
                let (next, verdict) = super::window_admit(state, now, &window);
                admitted = verdict;
                (next, Effects::default())
            })
            .await?;
        Ok(admitted)
    }
}
