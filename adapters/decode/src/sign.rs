//! Signature frames: Ed25519 over each dump's seal, with a one-way chain of signing keys
//! (`core/SEALING.md` section 6), so that an auditor verifies with a public key only.
//!
//! The signing key of epoch `e` is derived from the sealing key: seed `SHA-256(k[e] ||
//! "sign")`. Each signature frame carries the public key of epoch `e + 1`, signed with the
//! key of `e`: starting from the public key of the first epoch (`verify.pub`), a verifier
//! learns every later public key from the dumps themselves, and a stolen `k[E]` yields no
//! signing key of an epoch before `E`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use flightrec_core::crc::crc32;
use flightrec_core::dump::SYNC;
use flightrec_core::seal::{Seal, SealKey, FRAME_SIGNATURE};

/// Version of the signature body.
pub const SIGNATURE_VERSION: u8 = 1;
/// Bytes of a version-1 signature body: version, epoch, next public key, signature.
pub const SIGNATURE_BODY_LEN: usize = 1 + 8 + 32 + 64;
/// Bytes of the body the signature covers (all but the signature).
const SIGNED_LEN: usize = 1 + 8 + 32;
/// Prefix of every signed message.
pub const SIGN_DOMAIN: &[u8] = b"flightrec sign v1";
/// What is appended to a sealing key to make its signing key's seed.
pub const SIGN_LABEL: &[u8] = b"sign";
/// First line of a public key file.
pub const PUB_FILE_TAG: &str = "flightrec-seal-pub 1";

/// The Ed25519 signing key of `key`'s epoch.
pub fn signing_key(key: &SealKey) -> SigningKey {
    SigningKey::from_bytes(&key.derive(SIGN_LABEL))
}

/// The public key of `key`'s epoch.
pub fn public_key(key: &SealKey) -> VerifyingKey {
    signing_key(key).verifying_key()
}

/// A signature frame's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureBody {
    /// Epoch of the seal signed.
    pub epoch: u64,
    /// Public key of the next epoch.
    pub next_pub: [u8; 32],
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl SignatureBody {
    /// Reads a version-1 body.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let body: &[u8; SIGNATURE_BODY_LEN] = body.try_into().ok()?;
        let (version, rest) = body.split_first()?;
        let (epoch, rest) = rest.split_first_chunk::<8>()?;
        let (next_pub, rest) = rest.split_first_chunk::<32>()?;
        let signature: &[u8; 64] = rest.try_into().ok()?;
        (*version == SIGNATURE_VERSION).then_some(SignatureBody {
            epoch: u64::from_le_bytes(*epoch),
            next_pub: *next_pub,
            signature: *signature,
        })
    }

    fn signed_part(&self) -> [u8; SIGNED_LEN] {
        let mut out = [0u8; SIGNED_LEN];
        out[0] = SIGNATURE_VERSION;
        out[1..9].copy_from_slice(&self.epoch.to_le_bytes());
        out[9..].copy_from_slice(&self.next_pub);
        out
    }

    fn message(&self, seal: &Seal) -> Vec<u8> {
        [SIGN_DOMAIN, &seal.body(), &self.signed_part()].concat()
    }

    /// Whether this is `public`'s signature over `seal` for the seal's epoch.
    pub fn check(&self, public: &VerifyingKey, seal: &Seal) -> bool {
        self.epoch == seal.epoch
            && public
                .verify_strict(&self.message(seal), &Signature::from_bytes(&self.signature))
                .is_ok()
    }
}

/// The signature frame over `seal`, made with `key` (the key that made the seal, before it
/// evolves): sync, type, length, body, CRC.
pub fn signature_frame(key: &SealKey, seal: &Seal) -> Vec<u8> {
    sign_seal(key, seal).frame()
}

/// The signature body over `seal`, made with `key` (the key that made the seal, before it
/// evolves); it announces the public key of the next epoch.
pub fn sign_seal(key: &SealKey, seal: &Seal) -> SignatureBody {
    let next_pub = key
        .at_epoch(key.epoch().saturating_add(1))
        .map_or([0; 32], |k| public_key(&k).to_bytes());
    sign_seal_by(&signing_key(key), key.epoch(), next_pub, seal)
}

/// The signature body over `seal` of `epoch`, made with that epoch's `signing` key and
/// announcing `next_pub`: for a writer that keeps each epoch's signing key (derived once,
/// as the public key the epoch before announced) rather than deriving it again.
pub fn sign_seal_by(
    signing: &SigningKey,
    epoch: u64,
    next_pub: [u8; 32],
    seal: &Seal,
) -> SignatureBody {
    let mut body = SignatureBody {
        epoch,
        next_pub,
        signature: [0; 64],
    };
    body.signature = signing.sign(&body.message(seal)).to_bytes();
    body
}

impl SignatureBody {
    /// The whole signature frame of this body: sync, type, length, body, CRC.
    pub fn frame(&self) -> Vec<u8> {
        let mut frame = vec![SYNC, FRAME_SIGNATURE];
        frame.extend_from_slice(&(SIGNATURE_BODY_LEN as u16).to_le_bytes());
        frame.extend_from_slice(&self.signed_part());
        frame.extend_from_slice(&self.signature);
        let crc = crc32(&frame[1..]);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame
    }
}

/// A public key file's text: the public key of `key`'s epoch.
pub fn pub_file_text(key: &SealKey) -> String {
    format!(
        "{PUB_FILE_TAG}\nepoch {}\npub {}\naudit-pub {}\n",
        key.epoch(),
        crate::verify::hex(public_key(key).as_bytes()),
        crate::verify::hex(public_key(&crate::auditseal::audit_key(key)).as_bytes())
    )
}

/// Reads a public key file: the epoch and its public key.
pub fn parse_pub_file(text: &str) -> Result<(u64, VerifyingKey), String> {
    let mut lines = text.lines();
    if lines.next() != Some(PUB_FILE_TAG) {
        return Err(format!(
            "not a public key file (first line is not {PUB_FILE_TAG:?})"
        ));
    }
    let (mut epoch, mut key) = (None, None);
    for line in lines {
        match line.split_once(' ') {
            Some(("epoch", n)) => epoch = Some(n.parse::<u64>().map_err(|_| "bad epoch line")?),
            Some(("pub", hex)) => {
                let bytes = crate::verify::parse_hex::<32>(hex).ok_or("bad pub line")?;
                key = Some(VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 key")?);
            }
            // The audit stream's key: `parse_audit_pub`.
            Some(("audit-pub", _)) => {}
            _ if line.is_empty() => {}
            _ => return Err("unknown line in public key file".to_owned()),
        }
    }
    match (epoch, key) {
        (Some(e), Some(k)) => Ok((e, k)),
        _ => Err("public key file lacks its epoch or pub line".to_owned()),
    }
}

/// The public key of the audit stream's first epoch in a public key file (its `audit-pub`
/// line; `core/SEALING.md` section 9), `None` if the file has none.
pub fn parse_audit_pub(text: &str) -> Result<Option<VerifyingKey>, String> {
    let Some(hex) = text.lines().find_map(|l| l.strip_prefix("audit-pub ")) else {
        return Ok(None);
    };
    let bytes = crate::verify::parse_hex::<32>(hex).ok_or("bad audit-pub line")?;
    VerifyingKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|_| "audit-pub is not an Ed25519 key".to_owned())
}
