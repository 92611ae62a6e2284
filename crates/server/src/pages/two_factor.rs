//! `/settings/security`: turning 2FA on (QR, key, paper key, confirming code), showing and
//! downloading recovery codes, regenerating them and turning 2FA off; and the public
//! recovery page `/recover`. Starting a setup, new codes and turning 2FA off are sensitive
//! (SPEC §9): outside the step-up window they send the browser to `/reauthenticate` and
//! back here.

use super::csrf::{Csrf, CsrfForm};
use super::error::PageError;
use super::step_up::recent;
use super::ui::{Moment, Nav, Notice, page, to_login};
use super::{Empty, PageSession, PageUser};
use crate::extract::ClientMeta;
use crate::qr;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_core::factors::TwoFactorError;
use tessera_core::factors::totp::group;
use tessera_core::principal::AnySession;
use tessera_core::team::enforcement::Enforcement;

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    csrf: String,
    nav: Nav,
    enabled: bool,
    enabled_at: Option<Moment>,
    recovery_codes_remaining: i64,
    pending: bool,
    /// What the team's 2FA requirement asks of this user, if anything.
    requirement: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// Why the new password of the change-password form was refused, shown next to it.
    new_password_error: Option<String>,
    /// The step-up window (SPEC §9), in minutes.
    window_minutes: i64,
    /// The user's security keys and passkeys.
    keys: Vec<KeyRow>,
    /// Whether keys can be added here (the public URL is a relying party).
    webauthn: bool,
    /// Whether the user has an authenticator app (2FA may be on through keys alone).
    totp: bool,
}

/// A security key as the page lists it.
struct KeyRow {
    id: String,
    name: String,
    added: Moment,
    last_used: Option<Moment>,
}

/// The team's requirement, as the security page says it.
fn requirement(context: &AnySession) -> Option<String> {
    let team = &context.account().name;
    match context.enforcement() {
        Enforcement::SetupRequired => Some(format!(
            "{team} requires two-factor authentication. Set it up to continue: until then, \
             this is the only page you can use."
        )),
        Enforcement::Grace => context.account().grace_period_until.map(|until| {
            format!(
                "{team} requires two-factor authentication. Set it up before {}.",
                until.to_human()
            )
        }),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "security_setup.html")]
struct SetupPage {
    csrf: String,
    nav: Nav,
    qr_svg: String,
    secret_formatted: String,
    paper_key_formatted: String,
    expires_at: Moment,
}

#[derive(Template)]
#[template(path = "security_codes.html")]
struct CodesPage {
    csrf: String,
    nav: Nav,
    notice: Option<&'static str>,
    heading: &'static str,
    codes: Vec<String>,
    codes_joined: String,
}

pub(super) async fn overview(
    state: &AppState,
    context: &AnySession,
    csrf: Csrf,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    overview_with(state, context, csrf, status, (notice, error), None).await
}

/// The security page, with what to say above it and next to the new password field.
pub(super) async fn overview_with(
    state: &AppState,
    context: &AnySession,
    csrf: Csrf,
    status: StatusCode,
    (notice, error): (Option<&'static str>, Option<String>),
    new_password_error: Option<String>,
) -> Response {
    let two_factor = match state.core.factors.status(context).await {
        Ok(s) => s,
        Err(e) => return PageError::internal("cannot read 2FA status", e).into_response(),
    };
    let keys = match state.core.factors.security_keys(context).await {
        Ok(keys) => keys,
        Err(e) => return PageError::internal("cannot read security keys", e).into_response(),
    };
    let totp = match state.core.factors.has_authenticator_app(context).await {
        Ok(totp) => totp,
        Err(e) => return PageError::internal("cannot read factors", e).into_response(),
    };
    let template = SecurityPage {
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                name: k.name,
                added: k.created_at.into(),
                last_used: k.last_used_at.map(Moment::from),
            })
            .collect(),
        webauthn: state.core.webauthn_available(),
        totp,
        csrf: csrf.field.clone(),
        nav: Nav::new(context, &csrf),
        enabled: two_factor.enabled_at.is_some(),
        enabled_at: two_factor.enabled_at.map(Moment::from),
        recovery_codes_remaining: two_factor.recovery_codes_remaining,
        pending: two_factor.pending_until.is_some(),
        requirement: requirement(context),
        notice,
        error,
        new_password_error,
        window_minutes: state.core.sessions.reauth_window_secs() / 60,
    };
    page(status, &template, csrf)
}

pub async fn show(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Query(query): Query<Notice>,
    csrf: Csrf,
) -> Response {
    let Some(context) = session else {
        return to_login();
    };
    let notice = match query.notice.as_deref() {
        Some("disabled") => Some("Two-factor authentication is off."),
        Some("password") => Some("Your password is changed. Your other sessions were signed out."),
        Some("key_added") => Some("Your security key is added."),
        Some("key_removed") => Some("Your security key is removed."),
        Some("app_added") => Some("Your authenticator app is added."),
        _ => None,
    };
    overview(&state, &context, csrf, StatusCode::OK, notice, None).await
}

pub async fn setup(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { csrf, .. }: CsrfForm<Empty>,
) -> Response {
    let Some(context) = session else {
        return to_login();
    };
    let context = match recent(&state, context, "/settings/security") {
        Ok(recent) => recent,
        Err(reauthenticate) => return reauthenticate.into_response(),
    };
    match state.core.factors.start_setup(&context, &meta).await {
        Ok(setup) => {
            // Shown once: the QR code, the key, and the paper key.
            let template = SetupPage {
                csrf: csrf.field.clone(),
                nav: Nav::new(&context, &csrf),
                qr_svg: qr::svg(&setup.otpauth_uri),
                secret_formatted: setup.secret.base32_grouped(),
                paper_key_formatted: group(&setup.paper_key, 8, " "),
                expires_at: setup.expires_at.into(),
            };
            page(StatusCode::OK, &template, csrf)
        }
        Err(TwoFactorError::AlreadyEnabled) => Redirect::to("/settings/security").into_response(),
        Err(e) => failure(&state, &context, csrf, e).await,
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn activate(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageSession(session): PageSession,
    CsrfForm { form, csrf }: CsrfForm<CodeForm>,
) -> Response {
    let Some(context) = session else {
        return to_login();
    };
    match state
        .core
        .factors
        .activate(&context, &form.code, &meta)
        .await
    {
        // An app added beside security keys: 2FA was on, the recovery codes stay.
        Ok(codes) if codes.is_empty() => {
            Redirect::to("/settings/security?notice=app_added").into_response()
        }
        Ok(codes) => codes_page(
            &context,
            csrf,
            (Some("Code accepted."), "Two-factor authentication is on"),
            codes,
        ),
        Err(e) => failure(&state, &context, csrf, e).await,
    }
}

/// Turning 2FA off and new recovery codes: a button within the step-up window (SPEC §9);
/// a form that still sends the password (the old one) counts it as the re-authentication.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

pub async fn disable(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    CsrfForm { form, csrf }: CsrfForm<PasswordForm>,
) -> Response {
    let factors = &state.core.factors;
    let done = if form.password.is_empty() {
        match recent(&state, context.clone(), "/settings/security") {
            Ok(me) => factors.disable(&me, &meta).await,
            Err(reauthenticate) => return reauthenticate.into_response(),
        }
    } else {
        let password = form.password.into();
        factors
            .disable_with_password(&context, &password, &meta)
            .await
    };
    match done {
        Ok(()) => Redirect::to("/settings/security?notice=disabled").into_response(),
        Err(e) => failure(&state, &context, csrf, e).await,
    }
}

pub async fn regenerate(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    PageUser(context): PageUser,
    CsrfForm { form, csrf }: CsrfForm<PasswordForm>,
) -> Response {
    let factors = &state.core.factors;
    let done = if form.password.is_empty() {
        match recent(&state, context.clone(), "/settings/security") {
            Ok(me) => factors.regenerate_codes(&me, &meta).await,
            Err(reauthenticate) => return reauthenticate.into_response(),
        }
    } else {
        let password = form.password.into();
        factors
            .regenerate_codes_with_password(&context, &password, &meta)
            .await
    };
    match done {
        Ok(codes) => codes_page(&context, csrf, (None, "Your new recovery codes"), codes),
        Err(e) => failure(&state, &context, csrf, e).await,
    }
}

/// The recovery codes, just made: the user has 2FA on now, whatever the request began with.
fn codes_page(
    context: &AnySession,
    csrf: Csrf,
    (notice, heading): (Option<&'static str>, &'static str),
    codes: Vec<String>,
) -> Response {
    let template = CodesPage {
        csrf: csrf.field.clone(),
        nav: Nav::with_two_factor_on(context, &csrf),
        notice,
        heading,
        codes_joined: codes.join(" "),
        codes,
    };
    page(StatusCode::OK, &template, csrf)
}

/// A refused action, explained on the security page.
async fn failure(
    state: &AppState,
    context: &AnySession,
    csrf: Csrf,
    e: TwoFactorError,
) -> Response {
    refused(state, context, e)
        .or_form(async |status, message| {
            overview(state, context, csrf, status, None, Some(message)).await
        })
        .await
}

/// What the security page says when it turns an action down.
fn refused(state: &AppState, context: &AnySession, e: TwoFactorError) -> PageError {
    let (status, message) = match e {
        TwoFactorError::Invalid(e) if e.field == "password" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your password.".to_owned(),
        ),
        TwoFactorError::InvalidCode | TwoFactorError::Invalid(_) => (
            StatusCode::UNAUTHORIZED,
            "That code is not valid. Start the setup again and enter the code your app shows now."
                .to_owned(),
        ),
        TwoFactorError::NoPendingSetup => (
            StatusCode::CONFLICT,
            "The setup expired. Start again.".to_owned(),
        ),
        TwoFactorError::InvalidCredentials => {
            (StatusCode::UNAUTHORIZED, "Incorrect password.".to_owned())
        }
        TwoFactorError::TooManyAttempts { retry_at } => {
            return too_many(state, retry_at);
        }
        TwoFactorError::RequiredByAccount => (
            StatusCode::FORBIDDEN,
            format!(
                "{} requires two-factor authentication, so it stays on. If you lost your \
                 device, an admin of the team can reset it.",
                context.account().name
            ),
        ),
        TwoFactorError::AlreadyEnabled | TwoFactorError::NotEnabled => (
            StatusCode::CONFLICT,
            "That no longer applies; here is where things stand.".to_owned(),
        ),
        TwoFactorError::Internal(e) => {
            return PageError::internal_on_form("security page action failed", e);
        }
    };
    PageError::refused(status, message)
}

fn too_many(state: &AppState, retry_at: tessera_core::Timestamp) -> PageError {
    PageError::too_many(
        "Too many attempts. Try again in",
        state.core.now().secs_until(retry_at),
    )
}

#[derive(Deserialize)]
pub struct DownloadForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    content: String,
}

/// Echoes codes already on the user's screen back as a file, so saving them needs no
/// JavaScript and puts no secret in a URL.
pub async fn download(
    PageSession(session): PageSession,
    CsrfForm { form, .. }: CsrfForm<DownloadForm>,
) -> Response {
    if session.is_none() {
        return to_login();
    }
    let (filename, title) = match form.kind.as_str() {
        "recovery-codes" => (
            "tessera-recovery-codes.txt",
            "Tessera recovery codes (each works once)",
        ),
        "paper-key" => (
            "tessera-paper-key.txt",
            "Tessera paper key (turns 2FA off on the recovery page)",
        ),
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let body = match form.kind.as_str() {
        "recovery-codes" => form
            .content
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("\n"),
        _ => form.content.trim().to_owned(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        format!("{title}\n\n{body}\n"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage {
    csrf: String,
    email: String,
    error: Option<String>,
    done: bool,
}

/// The recovery page: empty, refused with `error`, or `done`.
fn recover_form(
    csrf: Csrf,
    email: String,
    status: StatusCode,
    error: Option<String>,
    done: bool,
) -> Response {
    let template = RecoverPage {
        csrf: csrf.field.clone(),
        email,
        error,
        done,
    };
    page(status, &template, csrf)
}

pub async fn recover_page(csrf: Csrf) -> Response {
    recover_form(csrf, String::new(), StatusCode::OK, None, false)
}

#[derive(Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    paper_key: String,
}

pub async fn recover(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    CsrfForm { form, csrf }: CsrfForm<RecoverForm>,
) -> Response {
    match state
        .core
        .factors
        .recover(&form.email, &form.paper_key, &meta)
        .await
    {
        Ok(()) => recover_form(csrf, form.email, StatusCode::OK, None, true),
        Err(e) => {
            recovery_refused(&state, e)
                .or_form(async |status, message| {
                    recover_form(csrf, form.email, status, Some(message), false)
                })
                .await
        }
    }
}

/// What the recovery page says when it turns a paper key down.
fn recovery_refused(state: &AppState, e: TwoFactorError) -> PageError {
    match e {
        TwoFactorError::TooManyAttempts { retry_at } => too_many(state, retry_at),
        TwoFactorError::Invalid(_) => PageError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your email and your paper key.",
        ),
        TwoFactorError::Internal(e) => PageError::internal_on_form("page recovery failed", e),
        _ => PageError::refused(
            StatusCode::UNAUTHORIZED,
            "That email and paper key do not match.",
        ),
    }
}
