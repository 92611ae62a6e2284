//! Reading rows back into the model. Queries select columns under the aliases the
//! `*_columns!` macros give them, so these decoders work for every query that joins them.

use super::Row;
use crate::query::Decode;
use std::str::FromStr;
use tessera_core::Timestamp;
use tessera_core::email::Email;
use tessera_core::factors::TwoFactorStatus;
use tessera_core::factors::totp::TotpFactor;
use tessera_core::model::{
    Account, Challenge, Invitation, RequestMeta, SecurityEvent, Session, User,
};
use tessera_core::sign_up::PendingSignup;
use tessera_core::store::{StoreError, StoreResult};

/// Columns of `users u`, aliased for [`user`].
macro_rules! user_columns {
    () => {
        "u.id AS user_id, u.account_id AS user_account_id, u.email AS user_email, \
         u.name AS user_name, u.role AS user_role, u.auth_source AS user_auth_source, \
         u.created_at AS user_created_at"
    };
}

/// Columns of `accounts a`, aliased for [`account`].
macro_rules! account_columns {
    () => {
        "a.id AS account_id, a.name AS account_name, \
         a.two_factor_required AS account_two_factor_required, \
         a.grace_period_until AS account_grace_period_until, \
         a.trusted_devices AS account_trusted_devices, \
         a.sso_two_factor AS account_sso_two_factor, a.created_at AS account_created_at"
    };
}

/// Columns of `sessions s`, aliased for [`session`].
macro_rules! session_columns {
    () => {
        "s.id AS session_id, s.user_id AS session_user_id, s.kind AS session_kind, \
         s.created_at AS session_created_at, s.expires_at AS session_expires_at, \
         s.last_seen_at AS session_last_seen_at, \
         s.reauthenticated_at AS session_reauthenticated_at, \
         s.ip AS session_ip, s.user_agent AS session_user_agent, s.method AS session_method"
    };
}

/// Columns of `login_challenges c`, aliased for [`challenge`].
macro_rules! challenge_columns {
    () => {
        "c.id AS challenge_id, c.user_id AS challenge_user_id, c.kind AS challenge_kind, \
         c.attempts AS challenge_attempts, c.created_at AS challenge_created_at, \
         c.expires_at AS challenge_expires_at, c.last_sent_at AS challenge_last_sent_at, \
         c.ip AS challenge_ip, c.user_agent AS challenge_user_agent, \
         c.device_id AS challenge_device_id"
    };
}

/// Columns of `totp_factors f` (which may be missing from an outer join), for [`factor`].
macro_rules! factor_columns {
    () => {
        "f.secret_sealed AS factor_secret_sealed, f.last_step AS factor_last_step, \
         f.enabled_at AS factor_enabled_at"
    };
}

/// Whether the user whose id is `$user` (a parameter or a column) has 2FA on: any active
/// second factor (the `active_factors` view). The one place SQL asks.
macro_rules! two_factor_on {
    ($user:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM active_factors af WHERE af.user_id = ",
            $user,
            ")"
        )
    };
}

/// The 2FA status of the user whose id is `$user` (a parameter or a column) at `$now`,
/// aliased for [`status`].
macro_rules! status_columns {
    ($user:literal, $now:literal) => {
        concat!(
            "(SELECT enabled_at FROM active_factors WHERE user_id = ",
            $user,
            " ORDER BY enabled_at LIMIT 1) AS status_enabled_at, \
             (SELECT COUNT(*) FROM recovery_codes WHERE user_id = ",
            $user,
            " AND used_at IS NULL) \
               AS status_remaining, \
             (SELECT expires_at FROM totp_enrollments WHERE user_id = ",
            $user,
            " AND expires_at > ",
            $now,
            ") AS status_pending_until"
        )
    };
}

/// Columns of `invitations i`, for [`invitation`].
macro_rules! invitation_columns {
    () => {
        "i.id, i.account_id, i.email, i.name, i.role, i.invited_by, i.status, i.created_at, \
         i.expires_at, i.auth_source"
    };
}

macro_rules! signup_columns {
    () => {
        "s.id, s.account_name, s.name, s.email, s.password_hash, s.created_at, s.expires_at, \
         s.used_at"
    };
}

pub(super) use {
    account_columns, challenge_columns, factor_columns, invitation_columns, session_columns,
    signup_columns, status_columns, two_factor_on, user_columns,
};

pub(super) fn get<T: Decode>(row: &Row, column: &str) -> StoreResult<T> {
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn parse<T: FromStr>(row: &Row, column: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = get(row, column)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(super) fn time(row: &Row, column: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, column).map(Timestamp::from_unix)
}

fn optional_time(row: &Row, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, column)?.map(Timestamp::from_unix))
}

pub(super) fn user(row: &Row) -> StoreResult<User> {
    let email: String = get(row, "user_email")?;
    Ok(User {
        id: parse(row, "user_id")?,
        account_id: parse(row, "user_account_id")?,
        email: Email::parse(&email).map_err(|e| StoreError::Corrupt(format!("user_email: {e}")))?,
        name: get(row, "user_name")?,
        role: parse(row, "user_role")?,
        auth_source: parse(row, "user_auth_source")?,
        created_at: time(row, "user_created_at")?,
    })
}

pub(super) fn account(row: &Row) -> StoreResult<Account> {
    Ok(Account {
        id: parse(row, "account_id")?,
        name: get(row, "account_name")?,
        two_factor_required: get(row, "account_two_factor_required")?,
        grace_period_until: optional_time(row, "account_grace_period_until")?,
        trusted_devices: parse(row, "account_trusted_devices")?,
        sso_two_factor: parse(row, "account_sso_two_factor")?,
        created_at: time(row, "account_created_at")?,
    })
}

pub(super) fn session(row: &Row) -> StoreResult<Session> {
    Ok(Session {
        id: parse(row, "session_id")?,
        user_id: parse(row, "session_user_id")?,
        kind: parse(row, "session_kind")?,
        created_at: time(row, "session_created_at")?,
        expires_at: time(row, "session_expires_at")?,
        last_seen_at: time(row, "session_last_seen_at")?,
        reauthenticated_at: time(row, "session_reauthenticated_at")?,
        ip: get(row, "session_ip")?,
        user_agent: get(row, "session_user_agent")?,
        method: get::<Option<String>>(row, "session_method")?
            .as_deref()
            .and_then(tessera_core::sessions::SignInMethod::parse),
    })
}

pub(super) fn challenge(row: &Row) -> StoreResult<Challenge> {
    Ok(Challenge {
        id: parse(row, "challenge_id")?,
        user_id: parse(row, "challenge_user_id")?,
        kind: parse(row, "challenge_kind")?,
        attempts: get(row, "challenge_attempts")?,
        created_at: time(row, "challenge_created_at")?,
        expires_at: time(row, "challenge_expires_at")?,
        last_sent_at: optional_time(row, "challenge_last_sent_at")?,
        meta: RequestMeta {
            ip: get(row, "challenge_ip")?,
            user_agent: get(row, "challenge_user_agent")?,
        },
        device_id: get::<Option<String>>(row, "challenge_device_id")?
            .map(|id| id.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("challenge_device_id: {e}")))?,
    })
}

/// The factor of [`factor_columns`], `None` where the outer join found none.
pub(super) fn factor(row: &Row) -> StoreResult<Option<TotpFactor>> {
    let Some(secret_sealed) = get(row, "factor_secret_sealed")? else {
        return Ok(None);
    };
    Ok(Some(TotpFactor {
        secret_sealed,
        last_step: get(row, "factor_last_step")?,
        enabled_at: time(row, "factor_enabled_at")?,
    }))
}

pub(super) fn status(row: &Row) -> StoreResult<TwoFactorStatus> {
    Ok(TwoFactorStatus {
        enabled_at: optional_time(row, "status_enabled_at")?,
        recovery_codes_remaining: get(row, "status_remaining")?,
        pending_until: optional_time(row, "status_pending_until")?,
    })
}

pub(super) fn invitation(row: &Row) -> StoreResult<Invitation> {
    let email: String = get(row, "email")?;
    let invited_by: Option<String> = get(row, "invited_by")?;
    Ok(Invitation {
        id: parse(row, "id")?,
        account_id: parse(row, "account_id")?,
        email: Email::parse(&email).map_err(|e| StoreError::Corrupt(format!("email: {e}")))?,
        name: get(row, "name")?,
        role: parse(row, "role")?,
        invited_by: invited_by
            .map(|id| id.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("invited_by: {e}")))?,
        status: parse(row, "status")?,
        auth_source: parse(row, "auth_source")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

pub(super) fn signup(row: &Row) -> StoreResult<PendingSignup> {
    let email: String = get(row, "email")?;
    Ok(PendingSignup {
        id: parse(row, "id")?,
        account_name: get(row, "account_name")?,
        name: get(row, "name")?,
        email: Email::parse(&email).map_err(|e| StoreError::Corrupt(format!("email: {e}")))?,
        password_hash: get(row, "password_hash")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        used_at: optional_time(row, "used_at")?,
    })
}

pub(super) fn event(row: &Row) -> StoreResult<SecurityEvent> {
    let account_id: Option<String> = get(row, "account_id")?;
    let user_id: Option<String> = get(row, "user_id")?;
    let detail: String = get(row, "detail")?;
    Ok(SecurityEvent {
        id: get(row, "id")?,
        account_id: account_id
            .map(|id| id.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("account_id: {e}")))?,
        user_id: user_id
            .map(|id| id.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("user_id: {e}")))?,
        email: get(row, "email")?,
        kind: parse(row, "kind")?,
        ip: get(row, "ip")?,
        user_agent: get(row, "user_agent")?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("detail: {e}")))?,
        created_at: time(row, "created_at")?,
    })
}
