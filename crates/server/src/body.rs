//! Request bodies: read whole, at most [`BODY_LIMIT`], before a handler runs; a readable
//! `413` at any size (SPEC §14, D9).
//!
//! A client that sends a body too large gets its `413` only if it reads the answer before
//! the server closes the connection: closing a socket with unread data in it resets the
//! connection, and the client, still writing, sees a broken pipe instead of the answer. So:
//! - a `Content-Length` over the limit is refused before the body is touched. With
//!   `Expect: 100-continue`, hyper sends `100 Continue` only once the body is read, so such a
//!   client is answered at once and sends nothing;
//! - otherwise the server reads and discards the rest of the body, up to [`DRAIN_LIMIT`] and
//!   for at most [`DRAIN_TIME`], then answers `413` (with `Connection: close` if the body did
//!   not end by then). A chunked body is read until it passes the limit, then drained alike.
//!
//! The whole body also has to arrive within the header timeout (`408 request_timeout`): a
//! slow body holds a connection no longer than a slow head.

use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::time::Duration;

/// Largest request body accepted anywhere (JSON or form).
pub const BODY_LIMIT: usize = 64 * 1024;
/// After a `413`, how much more of the body is read and thrown away so that the client
/// reads the answer.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
/// … and for how long at most.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// How long a body may take to arrive (the header timeout).
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Reads the body whole before the rest of the stack sees the request (which then holds it
/// as one buffer, so it can also be run again, see `app::run_to_completion`).
pub async fn read_whole(
    State(BodyTimeout(timeout)): State<BodyTimeout>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > BODY_LIMIT as u64) {
        if expects_continue(&parts.headers) {
            // Never read: hyper sends no `100 Continue`, and the client no body.
            return too_large(false);
        }
        let ended = drain(body).await;
        return too_large(ended);
    }
    let mut body = body;
    let mut read = Vec::new();
    let reading = async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue; // trailers
            };
            read.extend_from_slice(&data);
            if read.len() > BODY_LIMIT {
                return Ok::<_, axum::Error>(false);
            }
        }
        Ok(true)
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(true)) => {
            let request = Request::from_parts(parts, Body::from(Bytes::from(read)));
            next.run(request).await
        }
        Ok(Ok(false)) => too_large(drain(body).await),
        Ok(Err(_)) => AppError::BadRequest("the request body could not be read").into_response(),
        Err(_) => {
            let mut response = AppError::RequestTimeout.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and discards the rest of `body`, up to [`DRAIN_LIMIT`] and [`DRAIN_TIME`]; whether
/// it ended.
async fn drain(mut body: Body) -> bool {
    let draining = async {
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, draining)
        .await
        .unwrap_or(false)
}

/// The `413`; with `Connection: close` when part of the body is still unread.
fn too_large(body_ended: bool) -> Response {
    let mut response = AppError::PayloadTooLarge.into_response();
    if !body_ended {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
