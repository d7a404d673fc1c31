//! The sealing module against its spec (`SEALING.md`), checked with RustCrypto's SHA-256 and
//! HMAC as the reference.
#![cfg(feature = "seal")]

use flightrec_core::seal::{
    Seal, SealError, SealKey, Sealer, FRAME_SEAL, MAC_DOMAIN, SEAL_BODY_LEN, SEAL_FRAME_LEN,
    SEAL_SIGNED_LEN,
};
use flightrec_core::{crc::crc32, dump::SYNC};
use hmac::Mac;
use sha2::{Digest, Sha256};

fn reference_mac(key: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut m = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(MAC_DOMAIN);
    m.update(&body[..SEAL_SIGNED_LEN]);
    m.finalize().into_bytes().into()
}

#[test]
fn keys_evolve_by_the_spec() {
    let k0 = [0x11u8; 32];
    let mut key = SealKey::new(k0, 5);
    key.evolve();
    let want: [u8; 32] = Sha256::new()
        .chain_update(k0)
        .chain_update(b"evolve")
        .finalize()
        .into();
    assert_eq!((key.secret(), key.epoch()), (&want, 6));
    let again = SealKey::new(k0, 5).at_epoch(7).unwrap();
    key.evolve();
    assert_eq!(again.secret(), key.secret());
    assert!(
        key.at_epoch(6).is_none(),
        "an earlier key cannot be derived"
    );
}

/// The seal frame, byte by byte as SEALING.md lays it out, with reference hash and MAC.
#[test]
fn seal_frame_layout() {
    let dump = b"\x89FLR\r\n\x1a\n\x01 pretend frames";
    let k = [0x42u8; 32];
    let mut key = SealKey::new(k, 3);
    let mut out = Vec::new();
    let mut sealer = Sealer::new(&mut out);
    embedded_io::Write::write_all(&mut sealer, dump).unwrap();
    sealer.finish(&mut key).unwrap();
    assert_eq!(key.epoch(), 4);
    let (sealed, frame) = out.split_at(dump.len());
    assert_eq!(sealed, dump);
    assert_eq!(frame.len(), SEAL_FRAME_LEN);
    assert_eq!(&frame[..4], &[SYNC, FRAME_SEAL, SEAL_BODY_LEN as u8, 0]);
    let body = &frame[4..4 + SEAL_BODY_LEN];
    assert_eq!(body[0], 1, "version");
    assert_eq!(&body[1..9], &3u64.to_le_bytes(), "epoch");
    assert_eq!(&body[9..17], &(dump.len() as u64).to_le_bytes(), "length");
    let hash: [u8; 32] = Sha256::digest(dump).into();
    assert_eq!(&body[17..49], &hash);
    assert_eq!(&body[49..81], &reference_mac(&k, body));
    assert_eq!(&frame[85..], &crc32(&frame[1..85]).to_le_bytes());

    let seal = Seal::parse(body).unwrap();
    assert!(seal.check(&SealKey::new(k, 3)));
    assert!(!seal.check(&SealKey::new(k, 4)), "another epoch's key");
    assert!(!seal.check(&SealKey::new(k, 3).at_epoch(4).unwrap()));
    assert_eq!(seal.frame().as_slice(), frame);
}

#[test]
fn parse_refuses_other_versions_and_lengths() {
    let seal = Seal::new(&SealKey::new([1; 32], 0), 10, [2; 32]);
    let body = seal.body();
    assert_eq!(Seal::parse(&body), Some(seal));
    let mut v2 = body;
    v2[0] = 2;
    assert_eq!(Seal::parse(&v2), None);
    assert_eq!(Seal::parse(&body[..SEAL_BODY_LEN - 1]), None);
    assert_eq!(Seal::parse(&[body.as_slice(), &[0]].concat()), None);
}

/// Consecutive dumps through one sealer: each seal covers the bytes since the previous one.
#[test]
fn one_sealer_seals_dump_after_dump() {
    let mut key = SealKey::new([9; 32], 0);
    let mut out = Vec::new();
    let mut sealer = Sealer::new(&mut out);
    for part in [&b"first"[..], b"second dump"] {
        embedded_io::Write::write_all(&mut sealer, part).unwrap();
        sealer.finish(&mut key).unwrap();
    }
    let second = &out[5 + SEAL_FRAME_LEN..];
    let seal = Seal::parse(&second[11 + 4..11 + 4 + SEAL_BODY_LEN]).unwrap();
    assert_eq!((seal.epoch, seal.dump_len), (1, 11));
    assert_eq!(
        seal.dump_hash,
        <[u8; 32]>::from(Sha256::digest(b"second dump"))
    );
    assert!(seal.check(&SealKey::new([9; 32], 0).at_epoch(1).unwrap()));
}

/// A writer that takes at most 3 bytes a call, then fails after `budget` bytes.
struct Stingy {
    out: Vec<u8>,
    budget: usize,
}

impl embedded_io::ErrorType for Stingy {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for Stingy {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.budget == 0 {
            return Err(embedded_io::ErrorKind::OutOfMemory);
        }
        let n = buf.len().min(3).min(self.budget);
        self.out.extend_from_slice(&buf[..n]);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Short writes: the hash covers exactly the bytes the writer took. A failed seal leaves the
/// key where it was.
#[test]
fn short_writes_and_failures() {
    let mut key = SealKey::new([3; 32], 0);
    let mut sealer = Sealer::new(Stingy {
        out: Vec::new(),
        budget: 1000,
    });
    embedded_io::Write::write_all(&mut sealer, b"0123456789").unwrap();
    sealer.finish(&mut key).unwrap();
    let out = sealer.into_inner().out;
    let seal = Seal::parse(&out[14..14 + SEAL_BODY_LEN]).unwrap();
    assert_eq!(
        seal.dump_hash,
        <[u8; 32]>::from(Sha256::digest(b"0123456789"))
    );

    let mut key = SealKey::new([3; 32], 0);
    let mut sealer = Sealer::new(Stingy {
        out: Vec::new(),
        budget: 20,
    });
    embedded_io::Write::write_all(&mut sealer, b"0123456789").unwrap();
    assert_eq!(
        sealer.finish(&mut key),
        Err(SealError::Io(embedded_io::ErrorKind::OutOfMemory))
    );
    assert_eq!((key.epoch(), key.secret()), (0, &[3; 32]));
}
