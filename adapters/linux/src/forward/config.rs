//! The `[forward]` section of the configuration file.
//!
//! ```toml
//! [forward]
//! collector = "relp://logs.example.org:2514"   # HOST:PORT or tcp:// (octet-counted), relp://, tls://
//! spool = "/var/lib/gw/forward"                # directory, created 0700
//! spool_max_bytes = 67108864                   # oldest records dropped (and counted) beyond
//! spool_mode = "0600"
//! sd_id = "flightrec@32473"                    # NAME@ENTERPRISE-NUMBER
//! facility = "authpriv"                        # or a number 0..=23
//! app_name = "flightrec"
//! ca = "/etc/gw/collector-ca.pem"              # tls:// only: CA certificates (PEM)
//! server_name = "logs.example.org"             # tls:// only: default the collector's host
//! window = 1024                                # RELP: messages unacknowledged at most
//! reconnect_min_ms = 100                       # backoff doubles from here...
//! reconnect_max_ms = 30000                     # ...up to here
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{message, ForwardOptions, SpoolOptions, Target};
use crate::config::Mode;

/// `[forward]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardSection {
    /// `HOST:PORT`, `tcp://HOST:PORT`, `relp://HOST:PORT` or `tls://HOST:PORT`.
    pub collector: String,
    /// Spool directory.
    pub spool: String,
    /// Most bytes the spool holds.
    pub spool_max_bytes: u64,
    /// Mode of spool files.
    pub spool_mode: Mode,
    /// SD-ID of the structured data.
    pub sd_id: String,
    /// Syslog facility: a name (`authpriv`, `auth`, `daemon`, `user`, `local0`..`local7`)
    /// or a number.
    pub facility: String,
    /// APP-NAME.
    pub app_name: String,
    /// CA certificates for `tls://` (PEM).
    pub ca: Option<String>,
    /// Name the collector's certificate must carry (`tls://`; default its host).
    pub server_name: Option<String>,
    /// RELP window.
    pub window: usize,
    /// First reconnect wait, milliseconds.
    pub reconnect_min_ms: u64,
    /// Longest reconnect wait, milliseconds.
    pub reconnect_max_ms: u64,
}

impl Default for ForwardSection {
    fn default() -> Self {
        let d = ForwardOptions::new(Target::Tcp(String::new()), "");
        ForwardSection {
            collector: String::new(),
            spool: String::new(),
            spool_max_bytes: d.spool.max_bytes,
            spool_mode: Mode::default(),
            sd_id: d.sd_id,
            facility: "authpriv".into(),
            app_name: d.app_name,
            ca: None,
            server_name: None,
            window: d.window,
            reconnect_min_ms: 100,
            reconnect_max_ms: 30_000,
        }
    }
}

fn facility(name: &str) -> Option<u8> {
    let n = match name {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "authpriv" => 10,
        other => match other.strip_prefix("local") {
            Some(d) => 16 + d.parse::<u8>().ok().filter(|d| *d <= 7)?,
            None => other.parse().ok().filter(|n| *n <= 23)?,
        },
    };
    Some(n)
}

impl ForwardSection {
    /// The forwarder's options; an error names its key (`forward.collector`, ...).
    /// `format` is how the audit log writes lines (MSG is written the same way).
    pub fn options(
        &self,
        format: flightrec_audit::LineFormat,
    ) -> Result<ForwardOptions, (&'static str, String)> {
        if self.collector.is_empty() {
            return Err((
                "forward.collector",
                "must be set (e.g. relp://HOST:2514)".into(),
            ));
        }
        if self.spool.is_empty() {
            return Err(("forward.spool", "must be set (a directory)".into()));
        }
        let target = Target::parse(
            &self.collector,
            self.ca.as_ref().map(PathBuf::from),
            self.server_name.clone(),
        )
        .map_err(|e| {
            let key = if e.contains("CA") {
                "forward.ca"
            } else {
                "forward.collector"
            };
            (key, e)
        })?;
        if !matches!(target, Target::Tls { .. }) {
            for (key, set) in [
                ("forward.ca", self.ca.is_some()),
                ("forward.server_name", self.server_name.is_some()),
            ] {
                if set {
                    return Err((key, "only for a tls:// collector".into()));
                }
            }
        }
        if self.spool_max_bytes < super::spool::MIN_BYTES {
            return Err((
                "forward.spool_max_bytes",
                format!("at least {} bytes", super::spool::MIN_BYTES),
            ));
        }
        let mode = self
            .spool_mode
            .check("forward.spool_mode")
            .map_err(|e| ("forward.spool_mode", e.problem))?;
        message::check_sd_id(&self.sd_id).map_err(|e| ("forward.sd_id", e.problem))?;
        let facility = facility(&self.facility).ok_or((
            "forward.facility",
            format!(
                "{:?} is not a facility (a name such as authpriv or local0, or 0..=23)",
                self.facility
            ),
        ))?;
        if self.app_name.is_empty()
            || self.app_name.len() > 48
            || !self.app_name.bytes().all(|b| (33..=126).contains(&b))
        {
            return Err((
                "forward.app_name",
                "1 to 48 printable US-ASCII characters".into(),
            ));
        }
        if self.window == 0 {
            return Err(("forward.window", "must be at least 1".into()));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err((
                "forward.reconnect_max_ms",
                "reconnect_min_ms must be at least 1 and reconnect_max_ms at least that".into(),
            ));
        }
        Ok(ForwardOptions {
            target,
            spool: SpoolOptions {
                dir: PathBuf::from(&self.spool),
                max_bytes: self.spool_max_bytes,
                mode,
            },
            sd_id: self.sd_id.clone(),
            facility,
            app_name: self.app_name.clone(),
            window: self.window,
            backoff_min: Duration::from_millis(self.reconnect_min_ms),
            backoff_max: Duration::from_millis(self.reconnect_max_ms),
            format,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn key_of(text: &str) -> String {
        Config::from_toml(text).unwrap_err().key
    }

    #[test]
    fn forward_section() {
        let c = Config::from_toml(
            "[forward]\ncollector = \"relp://127.0.0.1:2514\"\nspool = \"/tmp/x\"\nfacility = \"local3\"\n",
        )
        .unwrap();
        let o = c.forward_options().unwrap().unwrap();
        assert_eq!(o.facility, 19);
        assert!(matches!(o.target, super::Target::Relp(_)));
        let base = "[forward]\ncollector = \"127.0.0.1:514\"\nspool = \"s\"\n";
        assert_eq!(key_of("[forward]\nspool = \"s\"\n"), "forward.collector");
        assert_eq!(key_of("[forward]\ncollector = \"h:1\"\n"), "forward.spool");
        assert_eq!(
            key_of(&format!("{base}sd_id = \"origin\"\n")),
            "forward.sd_id"
        );
        assert_eq!(
            key_of(&format!("{base}facility = \"local8\"\n")),
            "forward.facility"
        );
        assert_eq!(
            key_of(&format!("{base}spool_mode = \"0666\"\n")),
            "forward.spool_mode"
        );
        assert_eq!(key_of(&format!("{base}ca = \"ca.pem\"\n")), "forward.ca");
        assert_eq!(key_of(&format!("{base}window = 0\n")), "forward.window");
        assert_eq!(
            key_of(&format!("{base}spool_max_bytes = 10\n")),
            "forward.spool_max_bytes"
        );
        assert_eq!(
            key_of(&format!("{base}app_name = \"a b\"\n")),
            "forward.app_name"
        );
        assert_eq!(
            key_of(&format!("{base}colector = \"x\"\n")),
            "forward.colector"
        );
        assert_eq!(
            key_of("[forward]\ncollector = \"tls://h:6514\"\nspool = \"s\"\n"),
            "forward.ca"
        );
        assert_eq!(
            key_of("[forward]\ncollector = \"udp://h:514\"\nspool = \"s\"\n"),
            "forward.collector"
        );
    }
}
