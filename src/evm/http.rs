//! One keep-alive HTTP/1 connection to one EVM node. Every request is bounded in time (connect
//! included) and in answer size. https uses the Electrum client's rustls setup (public roots).

use super::EvmError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// A checked node URL.
#[derive(Debug, Clone)]
pub(crate) struct NodeUrl {
    /// As given (used in messages).
    pub url: String,
    tls: bool,
    host: String,
    port: u16,
    /// `Host:` header value.
    authority: String,
    /// Path and query sent in the request line.
    path: String,
}

impl NodeUrl {
    pub(crate) fn parse(url: &str) -> Result<NodeUrl, EvmError> {
        let bad = |reason: &str| EvmError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some("ws" | "wss") => return Err(bad("websocket nodes are not supported yet")),
            _ => return Err(bad("only http(s) nodes are supported")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        Ok(NodeUrl {
            url: url.to_string(),
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.to_string(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        })
    }
}

/// The connection; `None` until first use and after any failure.
pub(crate) struct HttpConn {
    pub url: NodeUrl,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    pub(crate) fn new(url: NodeUrl) -> HttpConn {
        HttpConn { url, sender: None }
    }

    fn transport(&self, reason: impl std::fmt::Display) -> EvmError {
        EvmError::Transport {
            url: self.url.url.clone(),
            reason: reason.to_string(),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, EvmError> {
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| self.transport(format!("connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let sender = if self.url.tls {
            let name = ServerName::try_from(self.url.host.clone())
                .map_err(|e| self.transport(format!("server name: {e}")))?;
            let connector =
                tokio_rustls::TlsConnector::from(crate::electrum::tls::client_config(true));
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| self.transport(format!("tls: {e}")))?;
            self.handshake(tls).await?
        } else {
            self.handshake(tcp).await?
        };
        Ok(sender)
    }

    async fn handshake<S>(&self, io: S) -> Result<SendRequest<Full<Bytes>>, EvmError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.transport(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// POSTs a JSON body and returns the answer body. The connection is kept for the next call
    /// unless something failed.
    pub(crate) async fn post(
        &mut self,
        body: Bytes,
        timeout: Duration,
        max_response: usize,
    ) -> Result<Bytes, EvmError> {
        let result = tokio::time::timeout(timeout, self.post_inner(body, max_response)).await;
        let result = result.unwrap_or_else(|_| {
            Err(EvmError::Timeout {
                url: self.url.url.clone(),
                ms: timeout.as_millis() as u64,
            })
        });
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn post_inner(&mut self, body: Bytes, max_response: usize) -> Result<Bytes, EvmError> {
        // A kept connection the node closed while idle fails before any answer: retry once on a
        // fresh one (these calls are reads, so a repeat is harmless).
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if reused {
            match self.send_once(body.clone(), max_response).await {
                Err(EvmError::Transport { .. }) => self.sender = None,
                other => return other,
            }
        }
        self.sender = Some(self.connect().await?);
        self.send_once(body, max_response).await
    }

    async fn send_once(&mut self, body: Bytes, max_response: usize) -> Result<Bytes, EvmError> {
        let req = Request::post(self.url.path.as_str())
            .header(hyper::header::HOST, self.url.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| self.transport(format!("request: {e}")))?;
        let Some(sender) = self.sender.as_mut() else {
            return Err(self.transport("not connected"));
        };
        sender.ready().await.map_err(|e| self.transport(e))?;
        let Some(sender) = self.sender.as_mut() else {
            return Err(self.transport("not connected"));
        };
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(EvmError::HttpStatus {
                url: self.url.url.clone(),
                status,
            });
        }
        match Limited::new(resp.into_body(), max_response).collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(EvmError::ResponseTooLarge {
                    url: self.url.url.clone(),
                    limit: max_response,
                })
            }
            Err(e) => Err(self.transport(format!("body: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = NodeUrl::parse("http://127.0.0.1:8545").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8545, "/")
        );
        assert_eq!(u.authority, "127.0.0.1:8545");
        let u = NodeUrl::parse("https://eth.example.org/v1/key?x=1").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.path.as_str()), (443, "/v1/key?x=1"));
        let u = NodeUrl::parse("http://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        for bad in [
            "127.0.0.1:8545",
            "ftp://x",
            "wss://x",
            "http://",
            "not a url",
            "http://u:p@h/",
        ] {
            assert!(
                matches!(NodeUrl::parse(bad), Err(EvmError::BadUrl { .. })),
                "{bad}"
            );
        }
    }
}
