//! A small HTTP/1.1 client for the load generator: one keep-alive connection per worker,
//! reopened when the server closes it (gunicorn's sync workers close after each response).
//! It reads `Content-Length` bodies only, which is what every server measured here sends.
//! Kept this lean so the load generator takes as little of the machine's two cores as it can.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Connection {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Connection {
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            stream: None,
        }
    }

    /// Sends `method path` with an optional JSON body and bearer token; reads the answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<Response> {
        let authorization = bearer.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("Authorization", value.as_str()))
            .collect();
        let body = body.map(|b| ("application/json", b));
        self.send_with(method, path, body, &headers).await
    }

    /// Sends `method path` with an optional body of a content type (`(type, body)`) and any
    /// headers; reads the answer.
    pub async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some((content_type, body)) = body {
            request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        // A kept-alive connection the server closed meanwhile fails on first use: retry
        // once on a fresh one.
        let reused = self.stream.is_some();
        match self.exchange(request.as_bytes()).await {
            Ok(response) => Ok(response),
            Err(_) if reused => {
                self.stream = None;
                self.exchange(request.as_bytes()).await
            }
            Err(e) => Err(e),
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("no connection");
        };
        stream.get_mut().write_all(request).await?;
        let (status, length, close) = read_head(stream).await?;
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await?;
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

/// Reads the status line and headers: (status, content length, whether the server closes).
async fn read_head(stream: &mut BufReader<TcpStream>) -> Result<(u16, usize, bool)> {
    let mut head = Vec::with_capacity(512);
    loop {
        let byte = stream.read_u8().await?;
        head.push(byte);
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > 16 * 1024 {
            bail!("response head too long");
        }
    }
    let text = std::str::from_utf8(&head)?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse()?);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked responses are not read by this client");
            }
        }
    }
    Ok((status, length.unwrap_or(0), close))
}
