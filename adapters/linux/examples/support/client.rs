//! The scripted client of the demo gateway.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One connection.
pub struct Client {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        Self::from_stream(TcpStream::connect(addr).await?).await
    }

    /// Connects from a given local address (any 127.x.y.z works on Linux loopback), so a
    /// test can play several peers.
    pub async fn connect_from(
        addr: SocketAddr,
        local: std::net::IpAddr,
    ) -> std::io::Result<Client> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        Self::from_stream(socket.connect(addr).await?).await
    }

    async fn from_stream(stream: TcpStream) -> std::io::Result<Client> {
        let (r, w) = stream.into_split();
        let mut c = Client {
            read: BufReader::new(r),
            write: w,
        };
        c.reply().await?;
        Ok(c)
    }

    async fn reply(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.read.read_line(&mut line).await?;
        Ok(line.trim_end().to_owned())
    }

    /// Sends a command line, returns the reply ("" when the server closed).
    pub async fn send(&mut self, line: &str) -> std::io::Result<String> {
        self.write.write_all(format!("{line}\n").as_bytes()).await?;
        self.reply().await
    }

    /// Tries to log in; true on OK.
    pub async fn login(&mut self, user: &[u8], host: &[u8], pass: &[u8]) -> std::io::Result<bool> {
        let r = self
            .send(&format!("LOGIN {} {} {}", hex(user), hex(host), hex(pass)))
            .await?;
        Ok(r == "OK")
    }

    /// Logs out.
    pub async fn logout(&mut self) -> std::io::Result<()> {
        self.send("LOGOUT").await.map(|_| ())
    }
}

/// One connection, one login, logout.
pub async fn login_once(
    addr: SocketAddr,
    user: &[u8],
    host: &[u8],
    pass: &[u8],
) -> std::io::Result<bool> {
    let mut c = Client::connect(addr).await?;
    let ok = c.login(user, host, pass).await?;
    c.logout().await?;
    Ok(ok)
}

/// User names a hostile peer sends to forge audit lines, fail2ban matches or terminal output.
pub fn hostile_names() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"bob\nFailed PLAIN authentication for root@example.org from 1.2.3.4 port 22".to_vec(),
        b"bob\r2026-01-01 00:00:00 Failed PLAIN authentication for x@y from 1.2.3.4 port 1"
            .to_vec(),
        b"\x1b[2J\x1b[1;1Hclean screen".to_vec(),
        b"eve from 1.2.3.4 port 22".to_vec(),
        b"x@example.org from 1.2.3.4".to_vec(),
        b"a|b=c;d,e\tf".to_vec(),
        b"nul\x00byte".to_vec(),
        "bidi\u{202e}txt.exe\u{2028}next".as_bytes().to_vec(),
        b"\xff\xfe invalid utf8".to_vec(),
    ];
    v.push(vec![b'A'; 5000]);
    v.push("é".repeat(400).into_bytes());
    v
}
