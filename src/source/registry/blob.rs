//! A layer blob as a `Read` that resumes a dropped or stalled connection with
//! an HTTP `Range` request and never yields more than the descriptor's size.

use std::io::{self, ErrorKind, Read};
use std::sync::Arc;

use super::plain::{self, Head, Miss};
use super::{Fail, Inner, backoff, content_length, header, short};

/// Resumes in a row without a single new byte before giving up is
/// `retries`; this caps resumes over the whole stream (a link that drops
/// every few bytes).
const MAX_TOTAL_RESUMES: u32 = 100;

/// A blob being read; see [`super::Client::blob`].
pub(super) struct BlobStream {
    inner: Arc<Inner>,
    digest: String,
    path: String,
    /// Bytes the blob has: the descriptor's size, else the first `Content-Length`.
    total: Option<u64>,
    /// Bytes returned so far.
    pos: u64,
    body: Option<Body>,
    /// Failures since the last byte received.
    failures: u32,
    resumes: u32,
}

/// Why opening a (ranged) response failed: worth a retry, or not.
enum OpenError {
    Retry(io::Error),
    Fatal(io::Error),
}

impl BlobStream {
    pub(super) fn open(inner: Arc<Inner>, digest: &str, size: Option<u64>) -> io::Result<Self> {
        if !super::is_digest(digest) {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!("'{digest}' is not a digest"),
            ));
        }
        let path = format!("/v2/{}/blobs/{digest}", inner.repository);
        let mut s = BlobStream {
            inner,
            digest: digest.to_string(),
            path,
            total: size,
            pos: 0,
            body: None,
            failures: 0,
            resumes: 0,
        };
        // Open now, so a missing blob or a refused token fails here.
        s.ensure_body()?;
        Ok(s)
    }

    /// `registry 'h': blob sha256:0123456789ab`.
    fn name(&self) -> String {
        format!(
            "registry '{}': blob {}",
            self.inner.registry,
            short(&self.digest)
        )
    }

    fn ensure_body(&mut self) -> io::Result<()> {
        while self.body.is_none() {
            match self.request() {
                Ok(b) => self.body = Some(b),
                Err(OpenError::Fatal(e)) => return Err(e),
                Err(OpenError::Retry(e)) => self.failed(e)?,
            }
        }
        Ok(())
    }

    /// Records a failure; `Err` once the retries are spent, else waits.
    fn failed(&mut self, e: io::Error) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        self.resumes += 1;
        if self.failures > self.inner.retries || self.resumes > MAX_TOTAL_RESUMES {
            let at = match self.total {
                Some(t) => format!("at byte {} of {t}", self.pos),
                None => format!("at byte {}", self.pos),
            };
            let timed_out = matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
                || e.get_ref()
                    .and_then(|i| i.downcast_ref::<ureq::Error>())
                    .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
            let (kind, what) = match e.kind() {
                _ if timed_out => (
                    ErrorKind::TimedOut,
                    format!(
                        "stalled: no data for {} s",
                        self.inner.read_timeout.as_secs_f32()
                    ),
                ),
                ErrorKind::UnexpectedEof => {
                    (ErrorKind::UnexpectedEof, "the body ended early".to_string())
                }
                k => (
                    k,
                    format!("connection lost ({})", super::lower(&e.to_string())),
                ),
            };
            return Err(io::Error::new(
                kind,
                format!(
                    "{}: {what} {at}, gave up after {} retries (check the network, or raise the timeout: MLSIZE_REGISTRY_TIMEOUT=SECONDS)",
                    self.name(),
                    self.failures - 1
                ),
            ));
        }
        std::thread::sleep(backoff(self.failures));
        Ok(())
    }

    /// GET the blob from `pos` on: straight from the socket when the
    /// registry is plain HTTP and answers simply ([`plain`]), else through
    /// the general client.
    fn request(&mut self) -> Result<Body, OpenError> {
        let mut headers = Vec::new();
        if self.pos > 0 {
            headers.push(("Range", format!("bytes={}-", self.pos)));
        }
        let mut redirected = None;
        if let Some(target) = &self.inner.plain {
            let mut with_auth = headers.clone();
            if let Ok(Some(a)) = self.inner.authorization() {
                with_auth.push(("Authorization", a));
            }
            match target.get(&self.path, &with_auth) {
                Ok((head, body)) => return self.start(head, Body::Plain(body)),
                Err(Miss::Io(e)) => return Err(OpenError::Retry(e)),
                Err(Miss::Redirect(to)) => redirected = super::resolve(&self.url(), &to),
                Err(Miss::Fallback) => {}
            }
        }
        let got = match &redirected {
            Some(url) => self.inner.get_url(url, &headers),
            None => self.inner.get(&self.path, &headers),
        };
        let resp = match got {
            Ok(r) => r,
            Err(Fail::Transport(e)) => {
                let (kind, what) = super::describe_transport(
                    &e,
                    &self.inner.registry,
                    self.inner.cert_hint,
                    self.inner.read_timeout,
                );
                let err = io::Error::new(kind, what);
                return Err(if super::is_transient(&e) {
                    OpenError::Retry(err)
                } else {
                    OpenError::Fatal(err)
                });
            }
            Err(Fail::Status { code: 404, .. }) => {
                return Err(OpenError::Fatal(io::Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{}: not found in repository '{}' (the manifest names a blob the registry does not have)",
                        self.name(),
                        self.inner.repository
                    ),
                )));
            }
            Err(f) => {
                let (kind, what) = self.inner.describe(f, &self.path);
                return Err(OpenError::Fatal(io::Error::new(kind, what)));
            }
        };
        let head = Head {
            code: resp.status().as_u16(),
            length: content_length(&resp),
            content_range: header(&resp, "content-range").map(str::to_string),
        };
        let body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        self.start(head, Body::Client(body))
    }

    fn url(&self) -> String {
        format!("{}{}", self.inner.base, self.path)
    }

    /// Checks a response's range and length against what is wanted, and
    /// skips what a server that ignores `Range` sends again.
    fn start(&mut self, head: Head, mut body: Body) -> Result<Body, OpenError> {
        let bad = |what: String| OpenError::Fatal(io::Error::new(ErrorKind::InvalidData, what));
        let mut skip = 0;
        if head.code == 206 {
            // `Content-Range: bytes START-END/TOTAL`
            let start = head
                .content_range
                .as_deref()
                .and_then(|v| v.trim().strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if start != Some(self.pos) {
                return Err(bad(format!(
                    "{}: asked for bytes from {}, the registry sent a range starting at {}",
                    self.name(),
                    self.pos,
                    start.map_or("an unknown offset".to_string(), |s| s.to_string())
                )));
            }
        } else {
            // A server that ignores Range sends it all again: skip what we have.
            skip = self.pos;
            match (self.total, head.length) {
                (Some(t), Some(l)) if t != l => {
                    return Err(bad(format!(
                        "{}: the registry sends {l} bytes, the manifest says {t} (a broken registry or a wrong manifest)",
                        self.name()
                    )));
                }
                (None, Some(l)) => self.total = Some(l),
                _ => {}
            }
        }
        if skip > 0 {
            let copied =
                io::copy(&mut (&mut body).take(skip), &mut io::sink()).map_err(OpenError::Retry)?;
            if copied < skip {
                return Err(OpenError::Retry(io::Error::from(ErrorKind::UnexpectedEof)));
            }
        }
        Ok(body)
    }
}

/// A response body: ureq's, or one read from the socket ([`plain`]).
enum Body {
    Client(ureq::BodyReader<'static>),
    Plain(plain::Body),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Client(b) => b.read(buf),
            Body::Plain(b) => b.read(buf),
        }
    }
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let want = match self.total {
                Some(t) if self.pos >= t => return Ok(0),
                Some(t) => buf
                    .len()
                    .min(usize::try_from(t - self.pos).unwrap_or(usize::MAX)),
                None => buf.len(),
            };
            self.ensure_body()?;
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            match body.read(&mut buf[..want]) {
                Ok(0) if self.total.is_none() => return Ok(0),
                Ok(0) => self.failed(io::Error::from(ErrorKind::UnexpectedEof))?,
                Ok(n) => {
                    self.pos += n as u64;
                    self.failures = 0;
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.failed(e)?,
            }
        }
    }
}
