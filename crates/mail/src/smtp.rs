//! A bounded pool of reused SMTP connections, each with `TCP_NODELAY`.
//!
//! lettre's own transport leaves Nagle's algorithm on, and its client writes the end of
//! the message (`\r\n.\r\n`) as a second small write: the kernel holds it until the server
//! acknowledges the body, which a delayed ACK puts off by 40 ms, so one connection
//! delivered about 20 emails a second (the reliability review's D5). Here each connection
//! is opened by us with `TCP_NODELAY` (and, for `smtps://`, TLS by `tokio-rustls`), then
//! handed to lettre's SMTP client for the protocol itself; up to `size` of them send in
//! parallel, and an idle one is reused while it lives.

use crate::transport::{TransportConfigError, TransportError};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How the connection is secured (`TESSERA_SMTP_URL`, lettre's URL forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// `smtp://host` (port 25): no TLS, for a local relay.
    Plain,
    /// `smtp://host?tls=required` (port 587): STARTTLS or nothing is sent.
    StartTls,
    /// `smtp://host?tls=opportunistic` (port 587): STARTTLS when the server offers it.
    StartTlsIfOffered,
    /// `smtps://host` (port 465): TLS from the first byte.
    Tls,
}

/// Where to deliver, parsed from the URL. (No `Debug`: it holds the password.)
struct Server {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl Server {
    fn parse(url: &str) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("the URL names no host")?.to_owned();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::StartTls, 587),
            ("smtp", Some("opportunistic")) => (Security::StartTlsIfOffered, 587),
            ("smtps", None) => (Security::Tls, 465),
            (scheme, tls) => {
                return Err(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?} (smtp://, \
                     smtp://…?tls=required, smtp://…?tls=opportunistic or smtps://)"
                ));
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|e| format!("the credentials are not UTF-8 once decoded: {e}"))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        // As lettre: a path names the EHLO domain.
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello,
        })
    }
}

/// A connection waiting in the pool, and since when.
struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

pub(crate) struct SmtpPool {
    server: Server,
    /// Bounds each SMTP step: connecting, the handshake, and each send.
    timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection that may be open at once.
    permits: Semaphore,
    tls: Arc<rustls::ClientConfig>,
}

/// A connection unused for this long is checked with `NOOP` before it is used again (the
/// server may have closed it); past `IDLE_LIMIT` it is closed instead.
const IDLE_CHECK: Duration = Duration::from_secs(5);
const IDLE_LIMIT: Duration = Duration::from_secs(60);

impl SmtpPool {
    pub(crate) fn new(
        url: &str,
        size: usize,
        timeout: Duration,
    ) -> Result<Self, TransportConfigError> {
        let server = Server::parse(url).map_err(TransportConfigError::SmtpUrl)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportConfigError::SmtpUrl(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            server,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
            tls: Arc::new(tls),
        })
    }

    /// Sends one message on a pooled connection (or a new one), waiting for a free slot.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<(), TransportError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TransportError::Transient("the SMTP pool is closed".to_owned()))?;
        let mut connection = match self.reusable().await {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        match tokio::time::timeout(self.timeout, connection.send(envelope, bytes)).await {
            Ok(Ok(_)) => {
                self.put_back(connection);
                Ok(())
            }
            Ok(Err(e)) => {
                self.close(connection).await;
                Err(classify(&e))
            }
            Err(_) => Err(TransportError::Transient(format!(
                "the SMTP server did not answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    /// An idle connection still alive, if the pool has one.
    async fn reusable(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let Idle {
                mut connection,
                since,
            } = self.idle.lock().ok()?.pop()?;
            let idle_for = since.elapsed();
            if connection.has_broken() || idle_for > IDLE_LIMIT {
                let _ = tokio::time::timeout(self.timeout, connection.quit()).await;
                continue;
            }
            if idle_for < IDLE_CHECK {
                return Some(connection);
            }
            if let Ok(true) = tokio::time::timeout(self.timeout, connection.test_connected()).await
            {
                return Some(connection);
            }
            self.close(connection).await;
        }
    }

    /// Says `QUIT` on a connection that failed, within the timeout: a server that stopped
    /// answering must not hold the lane.
    async fn close(&self, mut connection: AsyncSmtpConnection) {
        let _ = tokio::time::timeout(self.timeout, connection.abort()).await;
    }

    fn put_back(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, TransportError> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::Transient(format!(
                    "no SMTP connection to {}:{} within {} s",
                    self.server.host,
                    self.server.port,
                    self.timeout.as_secs()
                )))
            })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, TransportError> {
        let server = &self.server;
        let unreachable = |e: io::Error| {
            TransportError::Transient(format!(
                "cannot connect to the SMTP server {}:{}: {e}",
                server.host, server.port
            ))
        };
        let tcp = TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(unreachable)?;
        tcp.set_nodelay(true).map_err(unreachable)?;
        let stream: Box<dyn AsyncTokioStream> = if server.security == Security::Tls {
            let name = rustls::pki_types::ServerName::try_from(server.host.clone())
                .map_err(|e| TransportError::Permanent(format!("invalid SMTP host name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| TransportError::Transient(format!("SMTP TLS handshake: {e}")))?;
            Box::new(TlsTcp(tls))
        } else {
            Box::new(tcp)
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &server.hello)
            .await
            .map_err(|e| classify(&e))?;
        let starttls = match server.security {
            Security::StartTls => true,
            Security::StartTlsIfOffered => connection.can_starttls(),
            Security::Plain | Security::Tls => false,
        };
        if starttls {
            let parameters = TlsParameters::new(server.host.clone())
                .map_err(|e| TransportError::Permanent(format!("SMTP TLS parameters: {e}")))?;
            connection
                .starttls(parameters, &server.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        if let Some(credentials) = &server.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(connection)
    }
}

/// A 5xx answer will not change on retry; anything else might.
fn classify(e: &lettre::transport::smtp::Error) -> TransportError {
    if e.is_permanent() {
        TransportError::Permanent(e.to_string())
    } else {
        TransportError::Transient(e.to_string())
    }
}

/// An implicit-TLS connection as lettre's client takes it.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_as_lettre_reads_them() {
        let plain = Server::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((plain.port, plain.security), (2525, Security::Plain));
        assert!(plain.credentials.is_none());
        let submission = Server::parse("smtp://u%40x:p%2Fw@mail.example.com?tls=required").unwrap();
        assert_eq!(
            (
                submission.host.as_str(),
                submission.port,
                submission.security
            ),
            ("mail.example.com", 587, Security::StartTls)
        );
        assert!(submission.credentials.is_some());
        let wrapped = Server::parse("smtps://mail.example.com/tessera.example.com").unwrap();
        assert_eq!((wrapped.port, wrapped.security), (465, Security::Tls));
        assert_eq!(
            wrapped.hello,
            ClientId::Domain("tessera.example.com".to_owned())
        );
        let opportunistic = Server::parse("smtp://m.example.com?tls=opportunistic").unwrap();
        assert_eq!(opportunistic.security, Security::StartTlsIfOffered);
        for bad in ["http://x", "smtp://x?tls=maybe", "smtp://", "not a url"] {
            assert!(Server::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
