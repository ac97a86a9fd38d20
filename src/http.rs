//! `--pre-stop-http`: one plain HTTP/1.1 request to a local address, as
//! Kubernetes' `preStop.httpGet` hook makes, with no program needed in the
//! image.
//!
//! The request is made by a forked copy of curtain (`spawn::spawn_http`),
//! so it is a pre-stop step like a command: it has a pid, it is bounded by
//! the stop window (SIGKILLed at its end), it is reaped, and PID 1 itself
//! never blocks on a socket. The copy reports the status line's code
//! through a pipe and exits 0 for a 2xx, 1 for any other status, 2 when
//! there was no answer (refused, reset, not HTTP).
//!
//! Parsing and the wire format are pure and tested here; `request` is the
//! only part that touches the network.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};

/// A parsed `[METHOD] http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub addr: SocketAddr,
    /// The `Host` header: the URL's host and port as written.
    pub host: String,
    /// Path and query, as written (default `/`).
    pub target: String,
    /// What logs show: method, host and path, never the query (it may hold
    /// a token).
    pub label: String,
}

pub const URL_HELP: &str =
    "expected [METHOD] http://HOST[:PORT]/PATH with HOST an IP address or localhost (plain HTTP, no name lookup)";

/// Parse `--pre-stop-http`'s value; `None` when it is not one.
pub fn parse(text: &str) -> Option<HttpRequest> {
    let mut words = text.split_whitespace();
    let (method, url) = match (words.next()?, words.next(), words.next()) {
        (url, None, None) => ("GET", url),
        (method, Some(url), None) => (method, url),
        _ => return None,
    };
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let rest = url.strip_prefix("http://")?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let target = match target {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) || target.contains('#') {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    // An IPv4 address bare, an IPv6 address inside exactly one `[]`.
    let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => IpAddr::V6(v6.parse::<Ipv6Addr>().ok()?),
        None if host == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        None => IpAddr::V4(host.parse::<Ipv4Addr>().ok()?),
    };
    let path = target.split('?').next().unwrap_or("/");
    Some(HttpRequest {
        method: method.to_string(),
        addr: SocketAddr::new(ip, port),
        host: authority.to_string(),
        label: format!("{method} {authority}{path}"),
        target,
    })
}

/// `host:port`, `[v6]:port`, or either without a port (80).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let colon = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => Some(at),
        _ => None,
    };
    match colon {
        Some(at) => {
            let port = crate::config::parse_digits::<u16>(&authority[at + 1..]).filter(|p| *p > 0)?;
            Some((&authority[..at], port))
        }
        None => Some((authority, 80)),
    }
}

impl HttpRequest {
    /// The bytes sent: the request line and four headers, no body.
    pub fn wire(&self) -> String {
        let length = if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: curtain/{}\r\nAccept: */*\r\n{length}Connection: close\r\n\r\n",
            self.method,
            self.target,
            self.host,
            env!("CARGO_PKG_VERSION"),
        )
    }

    /// Make the request and wait for the status line; blocks (the caller is
    /// the forked copy, killed at the stop window's end).
    pub fn request(&self) -> Result<u16, String> {
        let mut stream = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
        stream
            .write_all(self.wire().as_bytes())
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            if let Some(code) = status_code(&head) {
                return code;
            }
            let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return status_code(&head)
                    .unwrap_or_else(|| Err("the connection closed before a status line".into()));
            }
            head.extend_from_slice(&buf[..n]);
        }
    }
}

/// The code of the final status line (`HTTP/1.1 204 No Content\r\n`):
/// `None` while it has not fully arrived. Interim answers (1xx, such as
/// `103 Early Hints`) come with their own header block and are skipped,
/// as a client must; only what follows them decides the step.
pub fn status_code(head: &[u8]) -> Option<Result<u16, String>> {
    let not_http = || Some(Err("the answer is not HTTP".to_string()));
    let mut rest = head;
    loop {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return if rest.len() > 1024 || head.len() > HEAD_MAX {
                not_http()
            } else {
                None
            };
        };
        let line = String::from_utf8_lossy(&rest[..end]);
        let mut parts = line.trim_end().splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().and_then(crate::config::parse_digits::<u16>);
        let code = match code {
            Some(code) if version.starts_with("HTTP/1.") && (100..=599).contains(&code) => code,
            _ => return not_http(),
        };
        if code >= 200 {
            return Some(Ok(code));
        }
        // An interim answer: skip its header lines, up to the empty one.
        rest = &rest[end + 1..];
        loop {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                return if head.len() > HEAD_MAX { not_http() } else { None };
            };
            let empty = matches!(&rest[..end], b"" | b"\r");
            rest = &rest[end + 1..];
            if empty {
                break;
            }
        }
    }
}

/// The most curtain reads before it decides an answer is not HTTP.
const HEAD_MAX: usize = 16 * 1024;

/// What the forked copy sends its parent: the status code, or the error.
pub fn encode_result(result: &Result<u16, String>) -> Vec<u8> {
    match result {
        Ok(code) => code.to_string().into_bytes(),
        Err(e) => format!("E{e}").into_bytes(),
    }
}

/// The parent's reading of `encode_result`.
pub fn decode_result(bytes: &[u8]) -> Option<Result<u16, String>> {
    let text = String::from_utf8_lossy(bytes);
    match text.strip_prefix('E') {
        Some(e) => Some(Err(e.to_string())),
        None => crate::config::parse_digits(&text).map(Ok),
    }
}

/// The forked copy's exit code for a result: 0 for a 2xx.
pub fn exit_code(result: &Result<u16, String>) -> i32 {
    match result {
        Ok(code) if (200..300).contains(code) => 0,
        Ok(_) => 1,
        Err(_) => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let r = parse("http://127.0.0.1:8080/drain?token=s3cret").expect("ok");
        assert_eq!(r.method, "GET");
        assert_eq!(r.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(r.target, "/drain?token=s3cret");
        assert_eq!(r.label, "GET 127.0.0.1:8080/drain");
        let r = parse("POST http://[::1]:9/q").expect("ok");
        assert_eq!(r.addr, "[::1]:9".parse().expect("addr"));
        assert_eq!(r.host, "[::1]:9");
        let r = parse("  DELETE   http://localhost  ").expect("ok");
        assert_eq!((r.addr.port(), r.target.as_str()), (80, "/"));
        assert_eq!(parse("http://10.0.0.1?x=1").expect("ok").target, "/?x=1");
        for bad in [
            "",
            "https://127.0.0.1/",
            "http://",
            "http://example.com/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65536/",
            "http://127.0.0.1:+80/",
            "http://user@127.0.0.1/",
            "http://::1/",
            "http://[127.0.0.1]/",
            "http://[::1:9/",
            "http://[[::1]]/",
            "http://[::1]]:80/",
            "http://[::1/",
            "http://::1]/",
            "get http://127.0.0.1/",
            "GET http://127.0.0.1/ extra",
            "http://127.0.0.1/a\u{7f}",
            "http://127.0.0.1/#frag",
            "127.0.0.1:80/",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_request_on_the_wire() {
        let r = parse("POST http://127.0.0.1:8080/drain").expect("ok");
        assert_eq!(
            r.wire(),
            format!(
                "POST /drain HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curtain/{}\r\nAccept: */*\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(!parse("http://127.0.0.1/")
            .expect("ok")
            .wire()
            .contains("Content-Length"));
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(Ok(204)));
        assert_eq!(status_code(b"HTTP/1.0 500\r\nServer: x"), Some(Ok(500)));
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert!(matches!(status_code(b"SSH-2.0-OpenSSH\r\n"), Some(Err(_))));
        assert!(matches!(status_code(b"HTTP/1.1 999 x\r\n"), Some(Err(_))));
        assert!(matches!(status_code(&[b'x'; 2000]), Some(Err(_))));
        // Interim answers are skipped; the final one decides.
        let early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
        assert_eq!(status_code(early), None);
        assert_eq!(
            status_code(&[&early[..], b"HTTP/1.1 500 x\r\n"].concat()),
            Some(Ok(500))
        );
        assert_eq!(
            status_code(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 P\n\nHTTP/1.1 204\r\n"),
            Some(Ok(204))
        );
        assert_eq!(status_code(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"), None);
        assert!(matches!(
            status_code(b"HTTP/1.1 100 Continue\r\n\r\nSSH\r\n"),
            Some(Err(_))
        ));
        let endless = [&b"HTTP/1.1 103 x\r\n"[..], &b"Link: y\r\n".repeat(3000)].concat();
        assert!(matches!(status_code(&endless), Some(Err(_))));
        for result in [
            Ok(200),
            Ok(503),
            Err("Connection refused (os error 111)".to_string()),
        ] {
            assert_eq!(decode_result(&encode_result(&result)), Some(result.clone()));
        }
        assert_eq!(decode_result(b""), None);
        assert_eq!(
            [Ok(200), Ok(299), Ok(302), Ok(500), Err(String::new())].map(|r| exit_code(&r)),
            [0, 0, 1, 1, 2]
        );
    }
}
