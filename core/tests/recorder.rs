//! The recorder: capture filter, errors that still carry the trigger's decision, counters
//! that reach the dump header, dumps of a recorder written back end to end.

use std::cell::RefCell;

use flightrec_core::encode::{Encode, Writer};
use flightrec_core::event::{AuthFailure, Custom, Event, Fields};
use flightrec_core::{
    Action, Build, CaptureFilter, ClockInfo, DumpOrder, Kind, Level, RateLimit, Reason,
    RecordError, Recorder, RecorderConfig, RecorderSettings, RingError, SessionId, TriggerConfig,
};

mod common;
use common::parse;

/// A `RecorderSettings` type `$name` for the configuration `$config`.
macro_rules! settings {
    ($name:ident = $config:expr) => {
        struct $name;
        impl flightrec_core::RecorderSettings for $name {
            const CONFIG: flightrec_core::RecorderConfig = $config;
        }
    };
}

const BUILD: Build<'static> = Build {
    name: "t",
    version: "0",
    id: &[],
};

const IMMEDIATE: TriggerConfig = TriggerConfig {
    post_records: 0,
    ..TriggerConfig::DEFAULT
};

fn failure(user: &str) -> AuthFailure<'_> {
    AuthFailure {
        user,
        host: "h",
        peer: None,
        mechanism: "pin",
        reason: "wrong",
    }
}

fn dump_of<const N: usize, C: RecorderSettings>(
    rec: &Recorder<N, C>,
    order: &DumpOrder,
) -> common::Parsed {
    let mut out = Vec::new();
    let mut scratch = [0u8; 512];
    let s = rec
        .dump(
            order,
            ClockInfo::BOOT_MILLIS,
            &BUILD,
            &mut out,
            &mut scratch,
        )
        .unwrap();
    assert_eq!(s.bytes, out.len());
    parse(&out).unwrap()
}

/// An event of a kind this version does not know.
struct Future(u8);
impl Encode for Future {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.0);
    }
}
impl Event for Future {
    const KIND: Kind = Kind(40);
    fn level(&self) -> Level {
        Level::Trace
    }
}

/// Kind 31: the last one the filter's mask covers.
struct Edge;
impl Encode for Edge {
    fn encode(&self, _: &mut Writer<'_>) {}
}
impl Event for Edge {
    const KIND: Kind = Kind(31);
    fn level(&self) -> Level {
        Level::Error
    }
}

#[test]
fn capture_filter() {
    const F: CaptureFilter = CaptureFilter {
        min_level: Level::Info,
        kinds: !(1 << Kind::FRAME.0) & !(1 << Kind::AUTH_FAILURE.0) & !(1 << 31),
    };
    assert!(F.allows(Kind::LOG, Level::Info));
    assert!(!F.allows(Kind::LOG, Level::Debug));
    assert!(!F.allows(Kind::FRAME, Level::Error));
    assert!(!F.allows(Kind(31), Level::Error));
    assert!(F.allows(Kind(32), Level::Info));
    assert!(F.allows(Kind(255), Level::Info));
    assert!(!F.allows(Kind(255), Level::Trace));
    for k in 0..=255u8 {
        for l in Level::ALL {
            assert!(CaptureFilter::ALL.allows(Kind(k), l));
        }
    }

    settings!(
        Settings1 = RecorderConfig {
            capture: CaptureFilter {
                min_level: Level::Trace,
                ..F
            },
            trigger: TriggerConfig {
                level: Some(Level::Error),
                ..IMMEDIATE
            },
            ..RecorderConfig::DEFAULT
        }
    );
    let rec: Recorder<1024, Settings1> = Recorder::new();
    assert_eq!(
        rec.log(1, Level::Debug, None, "t", "kept", &[]),
        Ok(Action::None)
    );
    assert_eq!(
        rec.frame(2, Level::Info, None, b"dropped"),
        Ok(Action::None)
    );
    // A filtered failed login still fires, with no record to point to.
    let Ok(Action::Dump(_)) = rec.record(3, Some(SessionId(1)), &failure("x")) else {
        panic!("the failed login fires although it is not recorded");
    };
    let order = rec.take_order().unwrap();
    assert_eq!(
        (order.reason, order.seq, order.time),
        (Reason::FailedLogin, None, 3)
    );
    let Ok(Action::Dump(_)) = rec.record(4, None, &Edge) else {
        panic!("an Error record fires the level criterion");
    };
    let order = rec.take_order().unwrap();
    assert_eq!(order.seq, None);
    // Kinds past the mask are always recorded.
    assert_eq!(rec.record(5, None, &Future(1)), Ok(Action::None));

    let stats = rec.stats().unwrap();
    // Left out by the filter is not a loss: not counted.
    assert_eq!(stats.ring.rejected, 0);
    assert_eq!(stats.ring.records, 2);
    let p = dump_of(&rec, &order);
    let kinds: Vec<(u64, u8)> = p.records.iter().map(|r| (r.seq, r.kind)).collect();
    assert_eq!(kinds, [(0, 0), (1, 40)]);
    assert_eq!(p.records[1].payload, [1]);
}

#[test]
fn errors_carry_the_trigger_action() {
    settings!(
        Settings2 = RecorderConfig {
            trigger: TriggerConfig {
                level: Some(Level::Error),
                ..IMMEDIATE
            },
            ..RecorderConfig::DEFAULT
        }
    );
    let rec: Recorder<64, Settings2> = Recorder::new();
    let long = "u".repeat(60);
    let Err(RecordError {
        error: RingError::TooLarge,
        action: Action::Dump(_),
        ..
    }) = rec.record(7, Some(SessionId(2)), &failure(&long))
    else {
        panic!("too large, and the failed login fires");
    };
    let order = rec.take_order().unwrap();
    assert_eq!(
        (order.reason, order.seq, order.index),
        (Reason::FailedLogin, None, 0)
    );

    let e = rec.frame(8, Level::Error, None, &[0; 60]).unwrap_err();
    assert_eq!(e.error, RingError::TooLarge);
    let Action::Dump(_) = e.action else {
        panic!("the level criterion fires");
    };
    let order = rec.take_order().unwrap();
    assert_eq!(
        (order.reason, order.index),
        (Reason::Level(Level::Error), 1)
    );

    let e = rec.frame(9, Level::Info, None, &[0; 60]).unwrap_err();
    assert_eq!(e.action, Action::None);

    let stats = rec.stats().unwrap();
    assert_eq!((stats.ring.rejected, stats.ring.records), (3, 0));
}

#[test]
fn lost_counts_reach_the_dump_header() {
    settings!(
        Settings3 = RecorderConfig {
            trigger: IMMEDIATE,
            ..RecorderConfig::DEFAULT
        }
    );
    let rec: Recorder<128, Settings3> = Recorder::new();
    rec.log(1, Level::Info, None, "t", "fits", &[]).unwrap();
    rec.frame(2, Level::Info, None, &[0; 200]).unwrap_err();
    rec.frame(3, Level::Info, None, &[0; 117]).unwrap_err();
    rec.note_dropped(5);
    rec.note_dropped(0);
    let stats = rec.stats().unwrap();
    assert_eq!((stats.dropped, stats.ring.rejected), (5, 2));

    let a = rec.fire(Reason::Manual, 4);
    assert_eq!(a, Action::Dump(Reason::Manual));
    let order = rec.take_order().unwrap();
    let p = dump_of(&rec, &order);
    // Two records too large for the ring and five dropped by an adapter: each counted once.
    assert_eq!(p.header.lost, 7);
    assert_eq!((p.header.reason_code, p.header.trigger_time), (8, 4));
    assert_eq!(p.records.len(), 1);

    // Counters saturate rather than overflow (32 bits on the device).
    rec.note_dropped(u64::MAX);
    assert_eq!(rec.stats().unwrap().dropped, u64::from(u32::MAX));
    let p = dump_of(&rec, &order);
    assert_eq!(p.header.lost, u64::from(u32::MAX) + 2);
}

#[test]
fn recorder_dumps_end_to_end() {
    const CONFIG: RecorderConfig = RecorderConfig {
        trigger: TriggerConfig {
            named: &["boot", "tamper"],
            scope_session: true,
            post_records: 2,
            rate: Some(RateLimit::new(1, 100, 0)),
            ..TriggerConfig::DEFAULT
        },
        ..RecorderConfig::DEFAULT
    };
    settings!(Settings4 = CONFIG);
    let rec: Recorder<4096, Settings4> = Recorder::new();
    let s1 = Some(SessionId(1));
    let s2 = Some(SessionId(2));
    rec.log(0, Level::Info, s1, "a", "one", &[]).unwrap();
    rec.log(1, Level::Info, s2, "a", "two", &[]).unwrap();
    let tamper = Custom {
        level: Level::Warn,
        name: "tamper",
        attributes: Fields::NONE,
    };
    assert_eq!(
        rec.record(2, s1, &tamper),
        Ok(Action::Start(Reason::Named(1)))
    );
    rec.log(3, Level::Info, None, "a", "three", &[]).unwrap();
    let Ok(Action::Dump(_)) = rec.log(4, Level::Info, s2, "a", "four", &[]) else {
        panic!("window of two records");
    };
    let order = rec.take_order().unwrap();
    assert_eq!(order.session, s1);
    let p = dump_of(&rec, &order);
    assert_eq!((p.header.reason_code, p.header.reason_arg), (5, 1));
    assert_eq!(p.header.detail, "tamper");
    assert_eq!((p.header.trigger_seq, p.header.scope), (Some(2), Some(1)));
    assert_eq!((p.header.first_seq, p.header.next_seq), (0, 5));
    let seqs: Vec<u64> = p.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 2, 3]);
    assert_eq!(p.end.out_of_scope, 2);

    // Rate-limited: the next failed login is suppressed, and reported by the dump after.
    assert_eq!(
        rec.record(5, s2, &failure("a")),
        Ok(Action::Suppressed(Reason::FailedLogin))
    );
    assert_eq!(
        rec.record(102, s2, &failure("a")),
        Ok(Action::Start(Reason::FailedLogin))
    );
    assert_eq!(rec.poll(1000), Action::None);
    assert_eq!(rec.deadline(), None);
    rec.log(103, Level::Info, None, "a", "x", &[]).unwrap();
    let Ok(Action::Dump(_)) = rec.log(104, Level::Info, None, "a", "y", &[]) else {
        panic!("window of two records");
    };
    let order = rec.take_order().unwrap();
    let p = dump_of(&rec, &order);
    assert_eq!((p.header.suppressed, p.header.index), (1, 1));
    assert_eq!(p.header.detail, "");
    assert_eq!(p.header.scope, Some(2));
}

/// A writer that logs into the recorder being dumped (e.g. a console echoing the dump): the
/// dump holds only the records present when it began, and no deadlock or panic follows.
#[test]
fn logging_while_dumping() {
    settings!(
        Settings5 = RecorderConfig {
            trigger: IMMEDIATE,
            ..RecorderConfig::DEFAULT
        }
    );
    static REC: Recorder<512, Settings5> = Recorder::new();
    for i in 0..5u8 {
        REC.frame(u64::from(i), Level::Info, None, &[i; 30])
            .unwrap();
    }
    struct Echo(Vec<u8>);
    impl embedded_io::ErrorType for Echo {
        type Error = std::convert::Infallible;
    }
    impl embedded_io::Write for Echo {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            REC.frame(99, Level::Trace, None, &[0xee; 40]).unwrap();
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let Action::Dump(_) = REC.fire(Reason::Manual, 5) else {
        panic!("manual dump");
    };
    let order = REC.take_order().unwrap();
    let mut w = Echo(Vec::new());
    let s = REC
        .dump(
            &order,
            ClockInfo::BOOT_MILLIS,
            &BUILD,
            &mut w,
            &mut [0u8; 128],
        )
        .unwrap();
    let p = parse(&w.0).unwrap();
    assert_eq!((p.header.first_seq, p.header.next_seq), (0, 5));
    for r in &p.records {
        assert_eq!(r.payload, [r.seq as u8; 30]);
    }
    // Echoed frames evict the dump's records as it goes: each is either written or lost.
    assert_eq!(p.end.records + p.end.lost, 5);
    assert!(p.end.lost > 0);
    assert_eq!(s.lost, p.end.lost);
}

/// An event whose encoding logs into the same recorder: the inner call is refused as
/// re-entrant instead of deadlocking or panicking, and the outer record is stored.
#[test]
fn reentrant_use_is_refused() {
    settings!(
        Settings6 = RecorderConfig {
            trigger: IMMEDIATE,
            ..RecorderConfig::DEFAULT
        }
    );
    static REC: Recorder<512, Settings6> = Recorder::new();
    thread_local! {
        static INNER: RefCell<Vec<Result<Action, RecordError>>> = const { RefCell::new(Vec::new()) };
    }
    struct Sneaky;
    impl Encode for Sneaky {
        fn encode(&self, w: &mut Writer<'_>) {
            let r = REC.log(0, Level::Info, None, "inner", "", &[]);
            INNER.with(|v| v.borrow_mut().push(r));
            w.u8(7);
        }
    }
    impl Event for Sneaky {
        const KIND: Kind = Kind(100);
        fn level(&self) -> Level {
            Level::Info
        }
    }
    assert_eq!(REC.record(1, None, &Sneaky), Ok(Action::None));
    INNER.with(|v| {
        let v = v.borrow();
        assert!(!v.is_empty());
        for r in v.iter() {
            let e = r.unwrap_err();
            assert_eq!((e.error, e.action), (RingError::Busy, Action::None));
        }
    });
    let stats = REC.stats().unwrap();
    assert_eq!(stats.ring.records, 1);
    assert_eq!(REC.fire(Reason::Manual, 2), Action::Dump(Reason::Manual));
    assert_eq!(
        REC.take_order(),
        Some(DumpOrder {
            reason: Reason::Manual,
            time: 2,
            seq: None,
            session: None,
            suppressed: 0,
            index: 0,
        })
    );
}

/// A recorder whose ring is attached at run time refuses records before, counts them as
/// lost, and records and dumps like any recorder after; its configuration is the type's.
#[test]
fn an_attached_ring_records_after_attach_and_counts_what_came_before() {
    use flightrec_core::{AttachedRecorder, Ring, Source};
    settings!(
        Immediate = RecorderConfig {
            trigger: IMMEDIATE,
            ..RecorderConfig::DEFAULT
        }
    );
    static REC: AttachedRecorder<256, Immediate> = AttachedRecorder::new();
    let e = REC
        .log(1, Level::Info, None, "t", "early", &[])
        .unwrap_err();
    assert_eq!((e.error, e.action), (RingError::Busy, Action::None));
    assert_eq!(REC.stats(), Err(RingError::Busy));
    assert_eq!(Source::oldest(&REC), Err(RingError::Busy));
    let Action::Dump(_) = REC.fire(Reason::Manual, 2) else {
        panic!("the trigger machine works without a ring");
    };
    let order = REC.take_order().unwrap();
    let mut out = Vec::new();
    assert_eq!(
        REC.dump(
            &order,
            ClockInfo::BOOT_MILLIS,
            &BUILD,
            &mut out,
            &mut [0; 128]
        ),
        Err(flightrec_core::DumpError::Ring(RingError::Busy))
    );
    assert!(out.is_empty(), "nothing written without a ring");

    REC.attach(Box::leak(Box::new(Ring::new()))).unwrap();
    REC.log(3, Level::Info, None, "t", "late", &[]).unwrap();
    let stats = REC.stats().unwrap();
    assert_eq!((stats.ring.records, stats.dropped), (1, 1));
    let Action::Dump(_) = REC.fire(Reason::Manual, 4) else {
        panic!("manual dump");
    };
    let order = REC.take_order().unwrap();
    let mut out = Vec::new();
    REC.dump(
        &order,
        ClockInfo::BOOT_MILLIS,
        &BUILD,
        &mut out,
        &mut [0; 128],
    )
    .unwrap();
    let p = parse(&out).unwrap();
    assert_eq!((p.header.lost, p.records.len()), (1, 1));
    REC.clear().unwrap();
    assert_eq!(REC.stats().unwrap().ring.records, 0);
}
