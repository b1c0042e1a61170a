//! A layer blob's `GET` over plain HTTP, its body read straight from the
//! socket into the caller's buffer.
//!
//! ureq reads every response into a buffer of its own (128 KiB) and copies
//! it out on each `read`: for a layer blob that is a second copy of every
//! byte, after the kernel's. On loopback (a CI job's `localhost:5000`
//! registry) that copy is a tenth of mlsize's CPU time. The usual answer to
//! a blob `GET` is simple, `200` or `206` with a `Content-Length`, so this
//! path asks for it on a connection of its own and, when the answer is that
//! simple, reads the body from the socket itself. Any other answer (a
//! redirect, a 401 for an expired token, chunked encoding, an error) is
//! dropped unread and the request is made again through ureq, which handles
//! them all; so is any failure to connect, which ureq then reports. A
//! redirect is followed by ureq from its `Location`, so that the registry is
//! not asked twice.
//!
//! Only for `http://` registries reached without a proxy: TLS decrypts into
//! a buffer of its own anyway.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest response head read (status line and headers).
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Most headers parsed.
const MAX_HEADERS: usize = 64;

/// Where plain-HTTP blob requests go.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// `host[:port]` as in the base URL (the `Host` header).
    authority: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    user_agent: &'static str,
}

/// What the blob stream checks of an answer, from this path or ureq's.
#[derive(Debug)]
pub(super) struct Head {
    pub code: u16,
    /// `Content-Length` (always there on this path).
    pub length: Option<u64>,
    /// `Content-Range`, on a `206`.
    pub content_range: Option<String>,
}

/// Why no body came: not a simple answer, or a connection that failed after
/// it was made (worth a resume).
#[derive(Debug)]
pub(super) enum Miss {
    /// Ask through the general client instead.
    Fallback,
    /// A redirect to this `Location`: the general client goes on from
    /// there (not asking the registry again).
    Redirect(String),
    /// The connection broke or stalled before the body started.
    Io(io::Error),
}

impl Target {
    /// The target for `base` (`http://host[:port]`), or `None` for HTTPS.
    pub(super) fn new(
        base: &str,
        connect_timeout: Duration,
        read_timeout: Duration,
        user_agent: &'static str,
    ) -> Option<Target> {
        let authority = base.strip_prefix("http://")?;
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return None;
        }
        Some(Target {
            authority: authority.to_string(),
            connect_timeout,
            read_timeout,
            user_agent,
        })
    }

    /// The addresses `authority` names (port 80 when it has none).
    fn addrs(&self) -> io::Result<Vec<SocketAddr>> {
        let a = &self.authority;
        let has_port = match a.rfind(':') {
            Some(i) => !a.ends_with(']') && a[i + 1..].bytes().all(|b| b.is_ascii_digit()),
            None => false,
        };
        let addrs: Vec<SocketAddr> = if has_port {
            a.to_socket_addrs()?.collect()
        } else {
            let host = a.trim_start_matches('[').trim_end_matches(']');
            (host, 80).to_socket_addrs()?.collect()
        };
        Ok(addrs)
    }

    /// `GET path` with `headers`; the body when the answer is a `200` or a
    /// `206` with a `Content-Length` and no transfer or content coding.
    pub(super) fn get(&self, path: &str, headers: &[(&str, String)]) -> Result<(Head, Body), Miss> {
        // A registry that can't be reached is ureq's to report; one that
        // stops answering is a stall like any other.
        let mut sock = self.connect().map_err(|e| match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Miss::Io(e),
            _ => Miss::Fallback,
        })?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n",
            self.authority, self.user_agent
        );
        for (k, v) in headers {
            if v.contains(['\r', '\n']) {
                return Err(Miss::Fallback);
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).map_err(Miss::Io)?;
        let mut buf = vec![0u8; 16 << 10];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                if buf.len() >= MAX_HEAD_BYTES {
                    return Err(Miss::Fallback);
                }
                buf.resize(buf.len() * 2, 0);
            }
            let n = sock.read(&mut buf[filled..]).map_err(Miss::Io)?;
            if n == 0 {
                return Err(Miss::Io(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the connection closed before the response headers",
                )));
            }
            filled += n;
            let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut parsed);
            let end = match resp.parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(end)) => end,
                Ok(httparse::Status::Partial) => continue,
                Err(_) => return Err(Miss::Fallback),
            };
            if let Some(location) = redirect(&resp) {
                return Err(Miss::Redirect(location));
            }
            let (head, length) = simple_head(&resp).ok_or(Miss::Fallback)?;
            buf.truncate(filled);
            buf.drain(..end);
            let body = Body {
                sock,
                early: buf,
                at: 0,
                left: length,
            };
            return Ok((head, body));
        }
    }

    /// A connection to the first address that answers, with the timeouts set.
    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(ErrorKind::NotFound, "no address");
        for a in self.addrs()? {
            match TcpStream::connect_timeout(&a, self.connect_timeout) {
                Ok(sock) => {
                    sock.set_read_timeout(Some(self.read_timeout))?;
                    sock.set_write_timeout(Some(self.read_timeout))?;
                    return Ok(sock);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The `Location` of a redirect.
fn redirect(resp: &httparse::Response) -> Option<String> {
    if !matches!(resp.code?, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let h = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))?;
    Some(std::str::from_utf8(h.value).ok()?.trim().to_string())
}

/// The head and length of a `200`/`206` with one `Content-Length` and the
/// body as sent (no `Transfer-Encoding`, no `Content-Encoding` but `identity`).
fn simple_head(resp: &httparse::Response) -> Option<(Head, u64)> {
    let code = resp.code?;
    if code != 200 && code != 206 {
        return None;
    }
    let mut length = None;
    let mut content_range = None;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).ok()?.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return None;
            }
            length = Some(value.parse::<u64>().ok()?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            if !value.eq_ignore_ascii_case("identity") {
                return None;
            }
        } else if h.name.eq_ignore_ascii_case("content-range") {
            content_range = Some(value.to_string());
        }
    }
    let length = length?;
    Some((
        Head {
            code,
            length: Some(length),
            content_range,
        },
        length,
    ))
}

/// A response body of known length, read from the socket into the caller's
/// buffer (after what came with the headers). It ends after `Content-Length`
/// bytes; a connection that closes sooner ends it early (`Ok(0)`), which the
/// blob stream resumes.
pub(super) struct Body {
    sock: TcpStream,
    /// Body bytes read along with the headers.
    early: Vec<u8>,
    at: usize,
    /// Body bytes not yet returned.
    left: u64,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = if self.at < self.early.len() {
            let n = want.min(self.early.len() - self.at);
            buf[..n].copy_from_slice(&self.early[self.at..self.at + n]);
            self.at += n;
            n
        } else {
            self.sock.read(&mut buf[..want])?
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Option<(Head, u64)> {
        let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut parsed);
        match resp.parse(text.as_bytes()) {
            Ok(httparse::Status::Complete(_)) => simple_head(&resp),
            _ => panic!("not a complete head: {text:?}"),
        }
    }

    #[test]
    fn only_simple_answers_are_read_here() {
        let (h, n) = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(
            (h.code, h.length, n, h.content_range),
            (200, Some(12), 12, None)
        );
        let (h, _) = head("HTTP/1.1 206 Partial\r\ncontent-range: bytes 5-11/12\r\nContent-Length: 7\r\nContent-Encoding: identity\r\n\r\n").unwrap();
        assert_eq!(
            (h.code, h.length, h.content_range.as_deref()),
            (206, Some(7), Some("bytes 5-11/12"))
        );
        for other in [
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://s3/x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
        ] {
            assert!(head(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn targets_are_plain_http_only() {
        let t = |b| Target::new(b, Duration::ZERO, Duration::ZERO, "t").map(|t| t.authority);
        assert_eq!(
            t("http://127.0.0.1:5000").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(t("http://[::1]:5000").as_deref(), Some("[::1]:5000"));
        assert_eq!(t("https://127.0.0.1:5000"), None);
        assert_eq!(t("http://user@host"), None);
        let one = Target::new("http://127.0.0.1", Duration::ZERO, Duration::ZERO, "t").unwrap();
        assert_eq!(one.addrs().unwrap(), vec!["127.0.0.1:80".parse().unwrap()]);
        let v6 = Target::new("http://[::1]", Duration::ZERO, Duration::ZERO, "t").unwrap();
        assert_eq!(v6.addrs().unwrap(), vec!["[::1]:80".parse().unwrap()]);
        let p = Target::new("http://[::1]:5000", Duration::ZERO, Duration::ZERO, "t").unwrap();
        assert_eq!(p.addrs().unwrap(), vec!["[::1]:5000".parse().unwrap()]);
    }

    /// A real socket: the body comes partly with the headers and partly
    /// after, and stops at `Content-Length` whatever follows.
    #[test]
    fn body_reads_from_the_socket_up_to_its_length() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                req.extend_from_slice(&b[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(b"world and more").unwrap();
            String::from_utf8(req).unwrap()
        });
        let t = Target::new(
            &format!("http://127.0.0.1:{port}"),
            Duration::from_secs(5),
            Duration::from_secs(5),
            "mlsize-test",
        )
        .unwrap();
        let (head, mut body) = t
            .get("/v2/r/blobs/x", &[("Range", "bytes=0-".to_string())])
            .unwrap();
        assert_eq!((head.code, head.length), (200, Some(10)));
        let mut got = Vec::new();
        body.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"helloworld");
        let req = server.join().unwrap();
        assert!(req.starts_with("GET /v2/r/blobs/x HTTP/1.1\r\n"), "{req}");
        assert!(
            req.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{req}"
        );
        assert!(req.contains("Range: bytes=0-\r\n"), "{req}");
    }
}
