//! A minimal keep-alive HTTP/1 client for kdfd's RPC, shared by the integration tests, the
//! benchmarks and the load generator, so they all speak to kdfd the way curl does.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connect or socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP protocol error (or the server closed the connection).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The body is not JSON.
    #[error("body is not JSON ({0}): {1}")]
    Json(serde_json::Error, String),
}

/// A raw answer: status, headers and body.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: hyper::HeaderMap,
    /// Response body.
    pub body: Bytes,
}

/// One keep-alive connection to kdfd.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    /// Opens a connection.
    pub async fn connect(addr: SocketAddr) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client { sender })
    }

    /// Sends a request with any method and body.
    pub async fn send(
        &mut self,
        method: &str,
        body: impl Into<Bytes>,
    ) -> Result<RawResponse, ClientError> {
        self.send_with_headers(method, body, &[]).await
    }

    /// Sends a request with extra headers.
    pub async fn send_with_headers(
        &mut self,
        method: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, ClientError> {
        self.sender.ready().await?;
        let mut builder = Request::builder()
            .method(method)
            .uri("/")
            .header("host", "127.0.0.1");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder.body(Full::new(body.into()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// POSTs JSON and parses the JSON answer.
    pub async fn post_json(&mut self, v: &Value) -> Result<(u16, Value), ClientError> {
        let r = self.send("POST", v.to_string()).await?;
        let parsed = serde_json::from_slice(&r.body)
            .map_err(|e| ClientError::Json(e, String::from_utf8_lossy(&r.body).into_owned()))?;
        Ok((r.status, parsed))
    }
}
