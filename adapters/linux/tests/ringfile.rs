//! SIGKILL the gateway at random moments while it logs from two threads (ring file mode):
//! the ring file decodes with flightrec-decode, every record but the in-flight ones is there
//! (sequence numbers of each shard without holes), nothing torn.

#[path = "../examples/support/client.rs"]
mod client;
mod common;

use std::collections::BTreeMap;

use flightrec_core::event::{decode, Decoded};
use flightrec_core::Level;
use flightrec_decode::{Damage, Decoder, Item};

const CONFIG: &str = r#"
host = "gw"
[ring]
shards = 2
file = "ring.flr"
[trigger]
failed_login = false
[dump]
path = "dumps/d-{pid}.flr"
"#;

#[test]
fn sigkill_leaves_a_decodable_ring_file() {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let gw = common::GatewayProcess::spawn(dir.path(), CONFIG, "alice@example.org:right\n");
        let addr = gw.addr;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Two connections, each handled on its own gateway worker thread when they can.
        for _ in 0..2 {
            rt.spawn(async move {
                let Ok(mut c) = client::Client::connect(addr).await else {
                    return;
                };
                while c.send("NOISE 200").await.is_ok_and(|r| r == "OK") {}
            });
        }
        // xorshift: a random moment between 50 and 550 ms.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(50 + seed % 500));
        unsafe { libc::kill(gw.pid(), libc::SIGKILL) };
        drop(gw); // reaps it
        rt.shutdown_background();

        let bytes = std::fs::read(dir.path().join("ring.flr")).unwrap();
        let mut decoder = Decoder::new(&bytes[..]);
        let mut shard = 0usize;
        let mut seqs: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut noise = 0;
        while let Some(item) = decoder.next().unwrap() {
            match item {
                Item::DumpStart { .. } => shard += 1,
                Item::Record { head, payload, .. } => {
                    // Every record decodes whole.
                    let level = Level::from_u8(head.level).unwrap();
                    let event = decode(head.kind, level, payload).unwrap();
                    if let Decoded::Log(l) = event {
                        if l.message == "noise" {
                            noise += 1;
                            assert_eq!(l.fields.iter().count(), 1);
                        }
                    }
                    seqs.entry(shard).or_default().push(head.seq);
                }
                // Each region carries the callsite table of its records.
                Item::Damaged { why, .. } => assert!(
                    !matches!(
                        why,
                        Damage::UnknownCallsite { .. }
                            | Damage::BadCallsiteTable
                            | Damage::BadCallsiteRecord
                    ),
                    "round {round}: {why}"
                ),
                _ => {}
            }
        }
        assert_eq!(shard, 2, "one region per shard");
        assert!(
            noise > 0,
            "round {round}: nothing logged before the kill: {seqs:?}"
        );
        let damage = decoder.stats();
        eprintln!(
            "round {round}: {noise} noise records; per shard {:?} records; {damage:?}",
            seqs.values()
                .map(|v| (v.len(), v.iter().max()))
                .collect::<Vec<_>>()
        );
        for (s, mut v) in seqs {
            v.sort_unstable();
            let n = v.len() as u64;
            let (first, last) = (v[0], v[v.len() - 1]);
            // Contiguous: the ring keeps the newest records; only evicted (oldest) records
            // and the one being written at the kill are missing.
            assert_eq!(
                last - first + 1,
                n,
                "round {round}, shard {s}: hole in {first}..={last}"
            );
            v.dedup();
            assert_eq!(
                v.len() as u64,
                n,
                "round {round}, shard {s}: a record twice"
            );
        }
    }
}

/// A run killed with SIGKILL leaves its ring file; the next run dumps it (untimely death),
/// sealed with the dump key, before anything else. A run stopped cleanly leaves none.
#[test]
fn the_next_run_dumps_and_seals_what_a_killed_run_left() {
    use flightrec_core::seal::SealKey;
    use flightrec_decode::verify::{key_file_text, Verifier};
    use std::os::unix::fs::PermissionsExt;
    // The same gateway, its dumps sealed (`[dump]` is the last table).
    let sealed = format!("{CONFIG}seal_key = \"seal.key\"\n");
    let sealed = sealed.as_str();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("seal.key");
    let key = SealKey::new([9; 32], 0);
    std::fs::write(&key_path, key_file_text(&key)).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let users = "alice@example.org:right\n";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gw = common::GatewayProcess::spawn(dir.path(), sealed, users);
    let addr = gw.addr;
    rt.block_on(async move {
        let mut c = client::Client::connect(addr).await.unwrap();
        for _ in 0..3 {
            assert_eq!(c.send("NOISE 10").await.unwrap(), "OK");
        }
    });
    unsafe { libc::kill(gw.pid(), libc::SIGKILL) };
    drop(gw);
    let dumps = dir.path().join("dumps");
    let files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&dumps)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    assert!(files().is_empty());

    // The next run: its first dump is the dead run's.
    let gw = common::GatewayProcess::spawn(dir.path(), sealed, users);
    gw.stop(); // SIGTERM: flushes (the death dump is written first), closes the ring file
    let written = files();
    assert_eq!(written.len(), 1, "{written:?}");
    let bytes = std::fs::read(&written[0]).unwrap();
    let mut v = Verifier::new(SealKey::new([9; 32], 0));
    let mut verdicts = v.verify_input("death dump", &bytes[..]).unwrap();
    assert!(v.finish(&mut verdicts).is_empty(), "{verdicts:?}");
    assert_eq!(verdicts.len(), 1);
    assert!(verdicts[0].fault.is_none(), "{verdicts:?}");
    let mut decoder = Decoder::new(&bytes[..]);
    let (mut reason, mut noise) = (None, 0);
    while let Some(item) = decoder.next().unwrap() {
        match item {
            Item::DumpStart { header, .. } => reason = Some(header.reason),
            Item::Record { head, payload, .. } => {
                let level = Level::from_u8(head.level).unwrap();
                if let Decoded::Log(l) = decode(head.kind, level, payload).unwrap() {
                    noise += usize::from(l.message == "noise");
                }
            }
            _ => {}
        }
    }
    assert_eq!(reason, Some(flightrec_core::Reason::UntimelyDeath));
    assert_eq!(noise, 30, "every line the killed run logged");
    assert!(dir.path().join("ring.flr.prev").exists());
    assert!(
        !dir.path().join("ring.flr.dead-1").exists(),
        "dumped: no longer waiting"
    );

    // Stopped cleanly, the second run leaves nothing to dump.
    let gw = common::GatewayProcess::spawn(dir.path(), sealed, users);
    gw.stop();
    assert_eq!(files().len(), 1, "no death dump after a clean stop");

    // The ring file itself is never sealed, and the verifier says what it is.
    let ring = std::fs::read(dir.path().join("ring.flr.prev")).unwrap();
    let mut v = Verifier::new(SealKey::new([9; 32], 0));
    let verdicts = v.verify_input("ring.flr.prev", &ring[..]).unwrap();
    assert_eq!(verdicts.len(), 2, "one per region");
    for d in &verdicts {
        let fault = d
            .fault
            .as_ref()
            .expect("a ring file is not sealed")
            .to_string();
        assert!(fault.contains("ring file's region"), "{fault}");
    }
}
