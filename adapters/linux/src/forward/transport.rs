//! Connections to a syslog collector: plain TCP and TLS (RFC 5425) with octet-counting
//! framing (RFC 6587 §3.4.1: `LEN SP MSG`), and RELP (rsyslog's acknowledged protocol).
//!
//! RELP, as librelp and rsyslog's imrelp speak it (`doc/relp.html` in librelp): every frame
//! is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. The client opens with
//! `1 open LEN relp_version=0 LF relp_software=... LF commands=syslog`, the server answers
//! `1 rsp LEN 200 OK LF ...`; then each message goes as `N syslog LEN MSG LF` and the server
//! answers `N rsp 6 200 OK LF` once it has taken it. Transaction numbers run from 1 to
//! 999 999 999 and wrap to 1. A client may have a window of messages unanswered; the
//! server answers in order. `N close 0` ends a session; `0 serverclose 0` is the server
//! going away.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where to forward and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Plain TCP, octet-counted (`HOST:PORT`).
    Tcp(String),
    /// RELP (`relp://HOST:PORT`).
    Relp(String),
    /// TLS, octet-counted (`tls://HOST:PORT`), checked against the CA certificates in
    /// `ca` (PEM); `server_name` is the name the certificate must carry (default: HOST).
    Tls {
        /// `HOST:PORT`.
        addr: String,
        /// CA certificates, PEM.
        ca: PathBuf,
        /// Name to check in the server's certificate.
        server_name: String,
    },
}

impl Target {
    /// Parses `HOST:PORT`, `tcp://HOST:PORT`, `relp://HOST:PORT` or `tls://HOST:PORT`
    /// (TLS needs a CA: `ca`; its server name defaults to HOST).
    pub fn parse(
        url: &str,
        ca: Option<PathBuf>,
        server_name: Option<String>,
    ) -> Result<Target, String> {
        let (scheme, addr) = match url.split_once("://") {
            Some((s, a)) => (s, a),
            None => ("tcp", url),
        };
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("{url:?} has no :PORT"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{url:?} is not HOST:PORT"));
        }
        match scheme {
            "tcp" => Ok(Target::Tcp(addr.to_owned())),
            "relp" => Ok(Target::Relp(addr.to_owned())),
            "tls" => Ok(Target::Tls {
                addr: addr.to_owned(),
                ca: ca.ok_or("tls:// needs a CA certificate file (forward.ca)")?,
                server_name: server_name
                    .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned()),
            }),
            other => Err(format!("unknown scheme {other:?} (known: tcp, relp, tls)")),
        }
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> &str {
        match self {
            Target::Tcp(a) | Target::Relp(a) | Target::Tls { addr: a, .. } => a,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "tcp://{a}"),
            Target::Relp(a) => write!(f, "relp://{a}"),
            Target::Tls { addr, .. } => write!(f, "tls://{addr}"),
        }
    }
}

/// A byte stream to the collector: a socket, or TLS over one.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    pub(crate) fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        self.socket()
            .set_read_timeout(Some(t.max(Duration::from_millis(1))))
    }

    /// Whether the peer has closed or reset the connection (looked at without waiting;
    /// for a connection on which nothing is expected).
    pub(crate) fn peer_gone(&mut self) -> bool {
        let s = self.socket();
        if s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let gone = match s.peek(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        gone || s.set_nonblocking(false).is_err()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn tcp(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(Duration::from_secs(30)))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The client side of TLS: the CA's certificates and the server name to check.
pub(crate) fn tls_config(ca: &std::path::Path) -> io::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {e}", ca.display()),
        )
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", ca.display()))
        })?;
        roots.add(cert).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", ca.display()))
        })?;
    }
    if roots.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no certificate in it", ca.display()),
        ));
    }
    // rustls deprecates the ring provider for lacking post-quantum key exchange; it is
    // kept because aws-lc-rs (the default) is a long C build for every user of the crate.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects to the target (TLS: and completes the handshake, so a refused certificate
/// is reported here, by name).
pub(crate) fn connect(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Stream> {
    match target {
        Target::Tcp(a) | Target::Relp(a) => Ok(Stream::Plain(tcp(a)?)),
        Target::Tls {
            addr, server_name, ..
        } => {
            let config = tls.ok_or_else(|| io::Error::other("no TLS configuration"))?;
            let name =
                rustls::pki_types::ServerName::try_from(server_name.clone()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("server name {server_name:?}: {e}"),
                    )
                })?;
            let mut sock = tcp(addr)?;
            sock.set_read_timeout(Some(CONNECT_TIMEOUT))?;
            let mut conn = rustls::ClientConnection::new(config.clone(), name)
                .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "TLS handshake with {addr} (expecting {server_name:?}) failed: {e}"
                        ),
                    )
                })?;
            }
            Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, sock))))
        }
    }
}

/// Appends `LEN SP MSG` (RFC 6587 §3.4.1).
pub(crate) fn octet_counted(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// Highest RELP transaction number; the next is 1.
pub(crate) const TXNR_MAX: u32 = 999_999_999;

/// The transaction number after `n`.
pub(crate) const fn next_txnr(n: u32) -> u32 {
    if n >= TXNR_MAX {
        1
    } else {
        n + 1
    }
}

/// Appends one RELP frame.
pub(crate) fn relp_frame(out: &mut Vec<u8>, txnr: u32, command: &str, data: &[u8]) {
    out.extend_from_slice(format!("{txnr} {command} {}", data.len()).as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// The data of our `open` command.
pub(crate) fn relp_offer() -> String {
    format!(
        "relp_version=0\nrelp_software=flightrec,{},https://example.invalid/flightrec\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    )
}

/// A RELP frame received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RelpFrame {
    pub txnr: u32,
    pub command: String,
    pub data: Vec<u8>,
}

/// Longest frame data accepted from a server (answers are short).
const RELP_MAX_DATA: usize = 64 * 1024;

/// Takes one whole frame from the front of `buf`: `Ok(None)` if it is not whole yet, an
/// error if the bytes are not RELP.
pub(crate) fn relp_parse(buf: &mut Vec<u8>) -> io::Result<Option<RelpFrame>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("RELP: {what}"));
    let mut fields = [0usize; 2];
    let mut at = 0;
    // TXNR SP COMMAND SP
    for f in &mut fields {
        match buf.iter().skip(at).position(|&b| b == b' ') {
            Some(i) => {
                *f = at + i;
                at += i + 1;
            }
            None if buf.len() - at > 32 => return Err(bad("frame head too long")),
            None => return Ok(None),
        }
    }
    let [sp1, sp2] = fields;
    let txnr = std::str::from_utf8(buf.get(..sp1).unwrap_or_default())
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("bad transaction number"))?;
    let command = std::str::from_utf8(buf.get(sp1 + 1..sp2).unwrap_or_default())
        .ok()
        .filter(|c| !c.is_empty() && c.len() <= 32 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .ok_or_else(|| bad("bad command"))?
        .to_owned();
    // DATALEN, then LF (no data) or SP DATA LF.
    let rest = buf.get(sp2 + 1..).unwrap_or_default();
    let Some(end) = rest.iter().position(|&b| b == b' ' || b == b'\n') else {
        return if rest.len() > 9 {
            Err(bad("bad data length"))
        } else {
            Ok(None)
        };
    };
    let len: usize = std::str::from_utf8(rest.get(..end).unwrap_or_default())
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .filter(|l| *l <= RELP_MAX_DATA)
        .ok_or_else(|| bad("bad data length"))?;
    let data_start = sp2 + 1 + end + usize::from(len > 0);
    let total = data_start + len + 1;
    if buf.len() < total {
        return Ok(None);
    }
    if (len > 0 && rest.get(end) != Some(&b' ')) || buf.get(total - 1) != Some(&b'\n') {
        return Err(bad("frame not ended by LF"));
    }
    let data = buf
        .get(data_start..data_start + len)
        .unwrap_or_default()
        .to_vec();
    buf.drain(..total);
    Ok(Some(RelpFrame {
        txnr,
        command,
        data,
    }))
}

/// Reads until one whole frame is in `buf` (or the read times out: `Ok(None)`).
pub(crate) fn relp_read(stream: &mut Stream, buf: &mut Vec<u8>) -> io::Result<Option<RelpFrame>> {
    loop {
        if let Some(f) = relp_parse(buf)? {
            return Ok(Some(f));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the collector closed the connection",
                ))
            }
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether a `rsp` frame's data says the command succeeded (`200 ...`).
pub(crate) fn relp_ok(data: &[u8]) -> bool {
    data.starts_with(b"200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("127.0.0.1:514", None, None),
            Ok(Target::Tcp("127.0.0.1:514".into()))
        );
        assert_eq!(
            Target::parse("relp://h:2514", None, None),
            Ok(Target::Relp("h:2514".into()))
        );
        assert!(Target::parse("tls://h:6514", None, None)
            .unwrap_err()
            .contains("CA"));
        let t = Target::parse("tls://[::1]:6514", Some("ca.pem".into()), None).unwrap();
        assert!(matches!(t, Target::Tls { ref server_name, .. } if server_name == "::1"));
        for bad in ["h", "h:0", ":1", "udp://h:1", "h:x"] {
            assert!(Target::parse(bad, None, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn octet_counting() {
        let mut out = Vec::new();
        octet_counted(&mut out, b"<13>1 - - - - - - hi");
        octet_counted(&mut out, "é".as_bytes());
        assert_eq!(out, "20 <13>1 - - - - - - hi2 é".as_bytes());
    }

    #[test]
    fn relp_frames() {
        let mut out = Vec::new();
        relp_frame(&mut out, 1, "open", b"relp_version=0");
        relp_frame(&mut out, 2, "close", b"");
        assert_eq!(out, b"1 open 14 relp_version=0\n2 close 0\n");
        let mut buf = b"2 rsp 6 200 OK\n3 rsp 0\n0 serverclose 0\n4 rsp 6 200".to_vec();
        let f = relp_parse(&mut buf).unwrap().unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), f.data.as_slice()),
            (2, "rsp", &b"200 OK"[..])
        );
        assert!(relp_ok(&f.data));
        assert_eq!(relp_parse(&mut buf).unwrap().unwrap().data, b"");
        assert_eq!(
            relp_parse(&mut buf).unwrap().unwrap().command,
            "serverclose"
        );
        assert_eq!(relp_parse(&mut buf).unwrap(), None);
        buf.extend_from_slice(b" OK\n");
        assert_eq!(relp_parse(&mut buf).unwrap().unwrap().txnr, 4);
        for junk in [
            &b"x rsp 0\n"[..],
            b"1 r-p 0\n",
            b"1 rsp 3 abcd\n",
            b"1 rsp 99999999999\n",
        ] {
            assert!(relp_parse(&mut junk.to_vec()).is_err(), "{junk:?}");
        }
        assert_eq!(next_txnr(TXNR_MAX), 1);
        assert_eq!(next_txnr(1), 2);
    }
}
