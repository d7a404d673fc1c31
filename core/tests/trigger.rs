//! The trigger machine against a table of scenarios: each a configuration and a list of
//! (time, input, expected action). Plus properties of the rate limit under random triggers.

use flightrec_core::event::Addr;
use flightrec_core::{
    Action, DumpOrder, Kind, Level, RateLimit, Reason, RecordInfo, SessionId, Threshold,
    TriggerConfig, TriggerMachine,
};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum In {
    Rec(RecordInfo<'static>),
    Fire(Reason),
    Poll,
    /// Not an input: checks `deadline()`.
    Deadline(Option<u64>),
}

/// What a step yields: the machine's action, with a due dump's order taken at once (as an
/// owner does), so that the tables can say all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    None,
    Start(Reason),
    Dump(DumpOrder),
    Suppressed(Reason),
}

/// Drives a machine as its owner does: every `Action::Dump` is followed by `take_order`.
trait Owner {
    fn record(&mut self, r: &RecordInfo<'_>, now: u64) -> Act;
    fn fire_now(&mut self, reason: Reason, now: u64) -> Act;
    fn poll_now(&mut self, now: u64) -> Act;
}

impl<const S: usize, const D: usize> Owner for TriggerMachine<S, D> {
    fn record(&mut self, r: &RecordInfo<'_>, now: u64) -> Act {
        let a = self.on_record(r, now);
        take(self, a)
    }
    fn fire_now(&mut self, reason: Reason, now: u64) -> Act {
        let a = self.fire(reason, now);
        take(self, a)
    }
    fn poll_now(&mut self, now: u64) -> Act {
        let a = self.poll(now);
        take(self, a)
    }
}

fn take<const S: usize, const D: usize>(m: &mut TriggerMachine<S, D>, a: Action) -> Act {
    match a {
        Action::None => {
            assert!(!m.is_due(), "no Dump action, no due dump");
            Act::None
        }
        Action::Start(r) => Act::Start(r),
        Action::Suppressed(r) => Act::Suppressed(r),
        Action::Dump(reason) => {
            let order = m
                .take_order()
                .expect("a Dump action leaves an order to take");
            assert_eq!(order.reason, reason, "the action names the order's reason");
            assert_eq!(m.take_order(), None, "taken once");
            Act::Dump(order)
        }
    }
}

fn rec(kind: Kind) -> RecordInfo<'static> {
    RecordInfo {
        seq: None,
        kind,
        level: Level::Info,
        session: None,
        peer: None,
        name: None,
    }
}

fn fail() -> RecordInfo<'static> {
    RecordInfo {
        level: Level::Warn,
        ..rec(Kind::AUTH_FAILURE)
    }
}

fn log() -> RecordInfo<'static> {
    rec(Kind::LOG)
}

/// Peers 10.0.0.0 to 10.0.0.255, for records that borrow their peer.
static PEERS: [Addr; 256] = {
    let mut a = [Addr::V4([0; 4]); 256];
    let mut i = 0;
    while i < 256 {
        a[i] = Addr::V4([10, 0, 0, i as u8]);
        i += 1;
    }
    a
};

fn from(ip: u8) -> RecordInfo<'static> {
    RecordInfo {
        peer: PEERS.get(usize::from(ip)),
        ..fail()
    }
}

fn seq(r: RecordInfo<'static>, seq: u64) -> RecordInfo<'static> {
    RecordInfo {
        seq: Some(seq),
        ..r
    }
}

fn dump(reason: Reason, time: u64, index: u32) -> Act {
    Act::Dump(DumpOrder {
        reason,
        time,
        seq: None,
        session: None,
        suppressed: 0,
        index,
    })
}

fn with(action: Act, f: impl FnOnce(&mut DumpOrder)) -> Act {
    match action {
        Act::Dump(mut o) => {
            f(&mut o);
            Act::Dump(o)
        }
        other => other,
    }
}

const NONE: Act = Act::None;
const IMMEDIATE: TriggerConfig = TriggerConfig {
    post_records: 0,
    post_ticks: 0,
    ..TriggerConfig::DEFAULT
};
const THRESHOLD_ONLY: TriggerConfig = TriggerConfig {
    failed_login: false,
    threshold: Some(Threshold {
        kind: Kind::AUTH_FAILURE,
        count: 3,
        window: 60,
        per_peer: false,
    }),
    ..IMMEDIATE
};

fn run<const S: usize, const D: usize>(
    name: &str,
    m: &mut TriggerMachine<S, D>,
    steps: &[(u64, In, Act)],
) {
    for (i, &(now, input, want)) in steps.iter().enumerate() {
        let got = match input {
            In::Rec(r) => m.record(&r, now),
            In::Fire(reason) => m.fire_now(reason, now),
            In::Poll => m.poll_now(now),
            In::Deadline(d) => {
                assert_eq!(m.deadline(), d, "{name}: step {i}: deadline");
                continue;
            }
        };
        assert_eq!(got, want, "{name}: step {i} ({now}, {input:?})");
    }
}

fn scenario(name: &str, config: TriggerConfig, steps: &[(u64, In, Act)]) {
    let mut m: TriggerMachine = TriggerMachine::new(config);
    run(name, &mut m, steps);
}

#[test]
fn failed_login() {
    use In::*;
    let login = Reason::FailedLogin;
    scenario(
        "immediate",
        IMMEDIATE,
        &[
            (1, Rec(log()), NONE),
            (
                5,
                Rec(seq(fail(), 3)),
                with(dump(login, 5, 0), |o| o.seq = Some(3)),
            ),
            (6, Rec(fail()), dump(login, 6, 1)),
            (7, Rec(rec(Kind::AUTH_SUCCESS)), NONE),
        ],
    );
    scenario(
        "switched off",
        TriggerConfig {
            failed_login: false,
            ..IMMEDIATE
        },
        &[(5, Rec(fail()), NONE)],
    );
    scenario(
        "two records after it",
        TriggerConfig {
            post_records: 2,
            ..TriggerConfig::DEFAULT
        },
        &[
            (1, Rec(seq(fail(), 0)), Act::Start(login)),
            (1, Deadline(None), NONE),
            (2, Rec(log()), NONE),
            (3, Rec(log()), with(dump(login, 1, 0), |o| o.seq = Some(0))),
            (4, Rec(log()), NONE),
        ],
    );
}

#[test]
fn threshold_global() {
    use In::*;
    let t = Reason::Threshold(Kind::AUTH_FAILURE);
    scenario(
        "count-1 is not enough, count is",
        THRESHOLD_ONLY,
        &[
            (0, Rec(fail()), NONE),
            (30, Rec(fail()), NONE),
            (60, Rec(log()), NONE), // other kinds do not count
            (60, Rec(fail()), dump(t, 60, 0)),
            // The count starts over after firing.
            (61, Rec(fail()), NONE),
            (62, Rec(fail()), NONE),
            (63, Rec(fail()), dump(t, 63, 1)),
        ],
    );
    scenario(
        "last one exactly at window+1 is too late",
        THRESHOLD_ONLY,
        &[
            (100, Rec(fail()), NONE),
            (130, Rec(fail()), NONE),
            (161, Rec(fail()), NONE),
            // 130, 161, 190 lie within 60 ticks.
            (190, Rec(fail()), dump(t, 190, 0)),
        ],
    );
    scenario(
        "count 1 fires on every record",
        TriggerConfig {
            threshold: Some(Threshold {
                kind: Kind::CUSTOM,
                count: 1,
                window: 0,
                per_peer: false,
            }),
            ..THRESHOLD_ONLY
        },
        &[
            (
                0,
                Rec(rec(Kind::CUSTOM)),
                dump(Reason::Threshold(Kind::CUSTOM), 0, 0),
            ),
            (
                0,
                Rec(rec(Kind::CUSTOM)),
                dump(Reason::Threshold(Kind::CUSTOM), 0, 1),
            ),
        ],
    );
    scenario(
        "count 0 counts as 1",
        TriggerConfig {
            threshold: Some(Threshold {
                count: 0,
                ..THRESHOLD_ONLY.threshold.unwrap()
            }),
            ..THRESHOLD_ONLY
        },
        &[(9, Rec(fail()), dump(t, 9, 0))],
    );
    // A count over the machine's DEPTH counts as DEPTH (8 by default).
    scenario(
        "count over depth",
        TriggerConfig {
            threshold: Some(Threshold {
                count: 1000,
                ..THRESHOLD_ONLY.threshold.unwrap()
            }),
            ..THRESHOLD_ONLY
        },
        &[
            (0, Rec(fail()), NONE),
            (1, Rec(fail()), NONE),
            (2, Rec(fail()), NONE),
            (3, Rec(fail()), NONE),
            (4, Rec(fail()), NONE),
            (5, Rec(fail()), NONE),
            (6, Rec(fail()), NONE),
            (7, Rec(fail()), dump(t, 7, 0)),
        ],
    );
    // Threshold and failed login both on: the threshold is reported when it is crossed.
    scenario(
        "threshold before failed login",
        TriggerConfig {
            failed_login: true,
            ..THRESHOLD_ONLY
        },
        &[
            (0, Rec(fail()), dump(Reason::FailedLogin, 0, 0)),
            (1, Rec(fail()), dump(Reason::FailedLogin, 1, 1)),
            (2, Rec(fail()), dump(t, 2, 2)),
        ],
    );
}

#[test]
fn threshold_per_peer() {
    use In::*;
    let t = Reason::Threshold(Kind::AUTH_FAILURE);
    let per_peer = TriggerConfig {
        threshold: Some(Threshold {
            per_peer: true,
            ..THRESHOLD_ONLY.threshold.unwrap()
        }),
        ..THRESHOLD_ONLY
    };
    scenario(
        "each peer its own count",
        per_peer,
        &[
            (0, Rec(from(1)), NONE),
            (1, Rec(from(2)), NONE),
            (2, Rec(from(1)), NONE),
            (3, Rec(from(2)), NONE),
            (4, Rec(fail()), NONE), // no peer: a count of its own
            (5, Rec(fail()), NONE),
            (60, Rec(from(1)), dump(t, 60, 0)),
            (61, Rec(from(2)), dump(t, 61, 1)),
            (62, Rec(fail()), dump(t, 62, 2)),
        ],
    );
    scenario(
        "per-peer window boundary",
        per_peer,
        &[
            (0, Rec(from(1)), NONE),
            (10, Rec(from(1)), NONE),
            (61, Rec(from(1)), NONE),
            (70, Rec(from(1)), dump(t, 70, 0)),
        ],
    );
    // Two slots: the least recently *seen* peer is forgotten, not the first one added.
    let mut m: TriggerMachine<2, 8> = TriggerMachine::new(per_peer);
    run(
        "lru",
        &mut m,
        &[
            (0, Rec(from(1)), NONE),
            (1, Rec(from(2)), NONE),
            (2, Rec(from(1)), NONE), // peer 1 has 2, seen last at 2
            (3, Rec(from(3)), NONE), // forgets peer 2
            (4, Rec(from(1)), dump(t, 4, 0)),
            (5, Rec(from(2)), NONE), // peer 2 starts over
            (6, Rec(from(2)), NONE),
            (7, Rec(from(2)), dump(t, 7, 1)),
        ],
    );
    let mut m: TriggerMachine<2, 8> = TriggerMachine::new(per_peer);
    run(
        "lru forgets a count",
        &mut m,
        &[
            (0, Rec(from(1)), NONE),
            (1, Rec(from(1)), NONE),
            (2, Rec(from(2)), NONE),
            (3, Rec(from(3)), NONE), // forgets peer 1's two
            (4, Rec(from(1)), NONE), // forgets peer 2
            (5, Rec(from(1)), NONE),
            (6, Rec(from(3)), NONE),
            (7, Rec(from(1)), dump(t, 7, 0)),
        ],
    );
}

#[test]
fn post_trigger_windows() {
    use In::*;
    let login = Reason::FailedLogin;
    let timed = TriggerConfig {
        post_records: 0,
        post_ticks: 10,
        ..TriggerConfig::DEFAULT
    };
    scenario(
        "timed window closed by poll",
        timed,
        &[
            (0, Deadline(None), NONE),
            (100, Rec(fail()), Act::Start(login)),
            (100, Deadline(Some(110)), NONE),
            (105, Rec(log()), NONE),
            (109, Poll, NONE),
            (110, Poll, dump(login, 100, 0)),
            (110, Deadline(None), NONE),
            (111, Poll, NONE),
        ],
    );
    scenario(
        "timed window closed by a late record",
        timed,
        &[
            (100, Rec(fail()), Act::Start(login)),
            (250, Rec(log()), dump(login, 100, 0)),
            (251, Poll, NONE),
        ],
    );
    scenario(
        "timed window closed by a trigger after its end",
        timed,
        &[
            (100, Rec(fail()), Act::Start(login)),
            (109, Fire(Reason::Signal(1)), NONE), // joins
            (110, Fire(Reason::Signal(1)), dump(login, 100, 0)), // joins, and closes it
            (111, Fire(Reason::Signal(1)), Act::Start(Reason::Signal(1))),
        ],
    );
    scenario(
        "records end it first",
        TriggerConfig {
            post_records: 2,
            post_ticks: 10,
            ..TriggerConfig::DEFAULT
        },
        &[
            (0, Rec(fail()), Act::Start(login)),
            (0, Deadline(Some(10)), NONE),
            (1, Rec(log()), NONE),
            (2, Rec(log()), dump(login, 0, 0)),
            (10, Poll, NONE),
        ],
    );
    scenario(
        "ticks end it first",
        TriggerConfig {
            post_records: 5,
            post_ticks: 10,
            ..TriggerConfig::DEFAULT
        },
        &[
            (0, Rec(fail()), Act::Start(login)),
            (1, Rec(log()), NONE),
            (10, Poll, dump(login, 0, 0)),
        ],
    );
    scenario(
        "triggers coalesce into the open window",
        TriggerConfig {
            post_records: 3,
            ..TriggerConfig::DEFAULT
        },
        &[
            (0, Rec(seq(fail(), 0)), Act::Start(login)),
            (1, Rec(fail()), NONE),
            (2, Fire(Reason::Manual), NONE),
            (3, Fire(Reason::Signal(15)), NONE),
            (4, Rec(fail()), NONE),
            (5, Rec(fail()), with(dump(login, 0, 0), |o| o.seq = Some(0))),
            // The record that closes a window does not start another.
            (6, Rec(fail()), Act::Start(login)),
        ],
    );
}

#[test]
fn rate_limit() {
    use In::*;
    let manual = Reason::Manual;
    let limited = TriggerConfig {
        rate: Some(RateLimit::new(2, 100, 10)),
        ..IMMEDIATE
    };
    scenario(
        "burst, refill and cooldown; suppressed reported once",
        limited,
        &[
            (0, Fire(manual), dump(manual, 0, 0)),
            (5, Fire(manual), Act::Suppressed(manual)), // cooldown
            (
                10,
                Fire(manual),
                with(dump(manual, 10, 1), |o| o.suppressed = 1),
            ), // burst of 2
            (20, Rec(fail()), Act::Suppressed(Reason::FailedLogin)),
            (49, Fire(manual), Act::Suppressed(manual)),
            (
                50,
                Fire(manual),
                with(dump(manual, 50, 2), |o| o.suppressed = 2),
            ),
            (55, Fire(manual), Act::Suppressed(manual)), // cooldown
            (60, Fire(manual), Act::Suppressed(manual)), // no token
            (99, Fire(manual), Act::Suppressed(manual)),
            (
                100,
                Fire(manual),
                with(dump(manual, 100, 3), |o| o.suppressed = 3),
            ),
            (150, Fire(manual), dump(manual, 150, 4)), // reset to 0 after the report
        ],
    );
    let mut m: TriggerMachine = TriggerMachine::new(limited);
    assert_eq!(m.fire_now(manual, 0), dump(manual, 0, 0));
    assert_eq!(m.fire_now(manual, 1), Act::Suppressed(manual));
    assert_eq!(m.suppressed(), 1);
    scenario(
        "a window started within the limit",
        TriggerConfig {
            post_records: 1,
            ..limited
        },
        &[
            (0, Rec(fail()), Act::Start(Reason::FailedLogin)),
            (1, Rec(log()), dump(Reason::FailedLogin, 0, 0)),
            (2, Rec(fail()), Act::Suppressed(Reason::FailedLogin)),
            (10, Rec(fail()), Act::Start(Reason::FailedLogin)),
            (
                11,
                Rec(log()),
                with(dump(Reason::FailedLogin, 10, 1), |o| o.suppressed = 1),
            ),
        ],
    );
}

#[test]
fn untimely_death() {
    use In::*;
    let death = Reason::UntimelyDeath;
    let limited = TriggerConfig {
        rate: Some(RateLimit::new(1, 1000, 1000)),
        scope_session: true,
        ..IMMEDIATE
    };
    scenario(
        "dumps although rate-limited",
        limited,
        &[
            (0, Fire(Reason::Manual), dump(Reason::Manual, 0, 0)),
            (1, Fire(Reason::Manual), Act::Suppressed(Reason::Manual)),
            (
                2,
                Fire(death),
                with(dump(death, 2, 1), |o| o.suppressed = 1),
            ),
            (3, Fire(death), dump(death, 3, 2)),
        ],
    );
    scenario(
        "dumps mid-window, keeping its scope",
        TriggerConfig {
            post_records: 10,
            post_ticks: 100,
            ..limited
        },
        &[
            (
                0,
                Rec(RecordInfo {
                    session: Some(SessionId(4)),
                    ..seq(fail(), 9)
                }),
                Act::Start(Reason::FailedLogin),
            ),
            (1, Rec(log()), NONE),
            (
                2,
                Fire(death),
                with(dump(death, 2, 0), |o| o.session = Some(SessionId(4))),
            ),
            (2, Deadline(None), NONE),
            (100, Poll, NONE),
        ],
    );
    scenario(
        "switched off",
        TriggerConfig {
            untimely_death: false,
            ..IMMEDIATE
        },
        &[(0, Fire(death), NONE)],
    );
}

#[test]
fn criteria_switched_off_and_on() {
    use In::*;
    let off = TriggerConfig {
        failed_login: false,
        untimely_death: false,
        policy: false,
        level: None,
        signal: false,
        named: &[],
        threshold: None,
        ..IMMEDIATE
    };
    scenario(
        "everything off",
        off,
        &[
            (0, Rec(fail()), NONE),
            (
                1,
                Rec(RecordInfo {
                    level: Level::Error,
                    ..log()
                }),
                NONE,
            ),
            (2, Fire(Reason::UntimelyDeath), NONE),
            (3, Fire(Reason::Policy), NONE),
            (4, Fire(Reason::Signal(1)), NONE),
            (
                5,
                Rec(RecordInfo {
                    name: Some("tamper"),
                    ..rec(Kind::CUSTOM)
                }),
                NONE,
            ),
            // Manual always works.
            (6, Fire(Reason::Manual), dump(Reason::Manual, 6, 0)),
        ],
    );
    scenario(
        "policy and signal on",
        IMMEDIATE,
        &[
            (3, Fire(Reason::Policy), dump(Reason::Policy, 3, 0)),
            (4, Fire(Reason::Signal(10)), dump(Reason::Signal(10), 4, 1)),
        ],
    );
    let named = |name: &'static str, kind: Kind| {
        In::Rec(RecordInfo {
            name: Some(name),
            ..rec(kind)
        })
    };
    scenario(
        "named events",
        TriggerConfig {
            named: &["tamper", "reboot"],
            ..off
        },
        &[
            (
                0,
                named("reboot", Kind::CUSTOM),
                dump(Reason::Named(1), 0, 0),
            ),
            (
                1,
                named("tamper", Kind::CUSTOM),
                dump(Reason::Named(0), 1, 1),
            ),
            (2, named("other", Kind::CUSTOM), NONE),
            (3, named("Tamper", Kind::CUSTOM), NONE),
            (4, named("tamper", Kind::LOG), NONE), // only custom events have names
        ],
    );
    let at = |level: Level| In::Rec(RecordInfo { level, ..log() });
    scenario(
        "level at or above",
        TriggerConfig {
            level: Some(Level::Warn),
            ..off
        },
        &[
            (0, at(Level::Trace), NONE),
            (1, at(Level::Info), NONE),
            (2, at(Level::Warn), dump(Reason::Level(Level::Warn), 2, 0)),
            (3, at(Level::Error), dump(Reason::Level(Level::Error), 3, 1)),
        ],
    );
}

#[test]
fn scope_session() {
    use In::*;
    let in_session = |s: u32| {
        In::Rec(RecordInfo {
            session: Some(SessionId(s)),
            ..seq(fail(), u64::from(s))
        })
    };
    scenario(
        "scoped",
        TriggerConfig {
            scope_session: true,
            ..IMMEDIATE
        },
        &[
            (
                0,
                in_session(3),
                with(dump(Reason::FailedLogin, 0, 0), |o| {
                    o.seq = Some(3);
                    o.session = Some(SessionId(3));
                }),
            ),
            (1, Rec(fail()), dump(Reason::FailedLogin, 1, 1)),
            (2, Fire(Reason::Manual), dump(Reason::Manual, 2, 2)),
        ],
    );
    scenario(
        "not scoped",
        IMMEDIATE,
        &[(
            0,
            in_session(3),
            with(dump(Reason::FailedLogin, 0, 0), |o| o.seq = Some(3)),
        )],
    );
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 1024 },
        failure_persistence: None,
        // ChaCha (the default) is several times slower under Miri.
        rng_algorithm: if cfg!(miri) {
            proptest::test_runner::RngAlgorithm::XorShift
        } else {
            proptest::test_runner::RngAlgorithm::default()
        },
        ..ProptestConfig::default()
    }
}

/// Checks the `RateLimit` promise on the times at which dumps were granted (a dump's
/// `DumpOrder::time`): in any span of `S` ticks at most `dumps + S * dumps / window`, never
/// two closer than `cooldown`.
fn check_rate(r: RateLimit, granted: &[u64]) -> Result<(), TestCaseError> {
    for (i, &a) in granted.iter().enumerate() {
        for (j, &b) in granted.iter().enumerate().skip(i + 1) {
            let span = u128::from(b - a);
            let bound =
                u128::from(r.dumps()) + span * u128::from(r.dumps()) / u128::from(r.window());
            prop_assert!(
                (j - i + 1) as u128 <= bound,
                "{} dumps in {} ticks, bound {}: {:?}",
                j - i + 1,
                span,
                bound,
                granted
            );
        }
        if let Some(&next) = granted.get(i + 1) {
            prop_assert!(next - a >= r.cooldown(), "{a} and {next}: {granted:?}");
        }
    }
    Ok(())
}

fn rate() -> impl Strategy<Value = RateLimit> {
    (1u32..6, 1u64..200, 0u64..40)
        .prop_map(|(dumps, window, cooldown)| RateLimit::new(dumps, window, cooldown))
}

proptest! {
    #![proptest_config(config())]

    /// Immediate dumps: every granted trigger is a dump at its own time.
    #[test]
    fn rate_limit_bounds_immediate_dumps(
        r in rate(),
        gaps in prop::collection::vec(0u64..30, 1..80),
    ) {
        let mut m: TriggerMachine = TriggerMachine::new(TriggerConfig { rate: Some(r), ..IMMEDIATE });
        let mut now = 0;
        let mut granted = Vec::new();
        let mut suppressed = 0;
        for gap in gaps {
            now += gap;
            match m.fire_now(Reason::Manual, now) {
                Act::Dump(o) => {
                    prop_assert_eq!(o.time, now);
                    prop_assert_eq!(o.index as usize, granted.len());
                    prop_assert_eq!(o.suppressed, suppressed);
                    suppressed = 0;
                    granted.push(now);
                }
                Act::Suppressed(_) => suppressed += 1,
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            prop_assert_eq!(m.suppressed(), suppressed);
        }
        check_rate(r, &granted)?;
        // A burst of `dumps` is always granted to a fresh machine.
        let mut m: TriggerMachine = TriggerMachine::new(TriggerConfig {
            rate: Some(r.with_cooldown(0)),
            ..IMMEDIATE
        });
        for i in 0..r.dumps() {
            prop_assert!(matches!(m.fire_now(Reason::Manual, 7), Act::Dump(_)), "burst dump {}", i);
        }
        prop_assert_eq!(m.fire_now(Reason::Manual, 7), Act::Suppressed(Reason::Manual));
    }

    /// Dumps after post-trigger windows: triggers, records and polls at random times.
    #[test]
    fn rate_limit_bounds_windowed_dumps(
        r in rate(),
        post_records in 0u32..4,
        post_ticks in 0u64..50,
        steps in prop::collection::vec((0u64..30, 0u8..4), 1..120),
    ) {
        let mut m: TriggerMachine = TriggerMachine::new(TriggerConfig {
            rate: Some(r),
            post_records,
            post_ticks,
            ..TriggerConfig::DEFAULT
        });
        let mut now = 0;
        let mut granted = Vec::new();
        let mut starts = 0;
        for (gap, what) in steps {
            now += gap;
            let action = match what {
                0 => m.record(&fail(), now),
                1 => m.record(&log(), now),
                2 => m.poll_now(now),
                _ => m.fire_now(Reason::Signal(2), now),
            };
            match action {
                Act::Dump(o) => {
                    prop_assert!(o.time <= now);
                    prop_assert_eq!(o.index as usize, granted.len());
                    granted.push(o.time);
                }
                Act::Start(_) => starts += 1,
                Act::Suppressed(_) | Act::None => {}
            }
            if let Some(d) = m.deadline() {
                prop_assert!(d > now, "deadline {} passed at {}", d, now);
            }
        }
        if post_records > 0 || post_ticks > 0 {
            // Every dump closes a window that a granted trigger opened.
            prop_assert!(granted.len() <= starts);
        }
        check_rate(r, &granted)?;
    }
}

/// Degenerate sizes and configurations never panic.
#[test]
fn degenerate_machines() {
    let config = TriggerConfig {
        threshold: Some(Threshold {
            kind: Kind::AUTH_FAILURE,
            count: u16::MAX,
            window: u64::MAX,
            per_peer: true,
        }),
        rate: Some(RateLimit::new(0, 0, u64::MAX)),
        post_ticks: u64::MAX,
        ..TriggerConfig::DEFAULT
    };
    let mut a: TriggerMachine<0, 0> = TriggerMachine::new(config);
    let mut b: TriggerMachine<1, 0> = TriggerMachine::new(config);
    let mut c: TriggerMachine<1, 1> = TriggerMachine::new(config);
    for now in [0, 1, u64::MAX - 1, u64::MAX, 3] {
        for r in [from(1), from(2), fail(), log()] {
            let _ = a.on_record(&r, now);
            let _ = b.on_record(&r, now);
            let _ = c.on_record(&r, now);
        }
        for m in [
            a.fire(Reason::Manual, now),
            b.poll(now),
            c.fire(Reason::UntimelyDeath, now),
        ] {
            let _ = m;
        }
    }
    // dumps 0 counts as 1; a window of 0 ticks still limits: one dump, then the cooldown.
    let mut m: TriggerMachine = TriggerMachine::new(TriggerConfig {
        rate: Some(RateLimit::new(0, 0, 0)),
        ..IMMEDIATE
    });
    assert!(matches!(m.fire_now(Reason::Manual, 5), Act::Dump(_)));
    assert_eq!(
        m.fire_now(Reason::Manual, 5),
        Act::Suppressed(Reason::Manual)
    );
    assert!(matches!(m.fire_now(Reason::Manual, 6), Act::Dump(_)));
}

#[test]
fn threshold_joining_an_open_window_names_the_dump() {
    let mut m: TriggerMachine<4, 8> = TriggerMachine::new(TriggerConfig {
        threshold: Some(Threshold {
            kind: Kind::AUTH_FAILURE,
            count: 3,
            window: 100,
            per_peer: false,
        }),
        post_records: 5,
        ..TriggerConfig::DEFAULT
    });
    // The first failed login opens the window; the third crosses the threshold inside it.
    assert_eq!(m.record(&fail(), 0), Act::Start(Reason::FailedLogin));
    assert_eq!(m.record(&fail(), 1), Act::None);
    assert_eq!(m.record(&fail(), 2), Act::None);
    assert_eq!(m.record(&log(), 3), Act::None);
    assert_eq!(m.record(&log(), 4), Act::None);
    let Act::Dump(order) = m.record(&log(), 5) else {
        panic!("the window closes after 5 records")
    };
    assert_eq!(order.reason, Reason::Threshold(Kind::AUTH_FAILURE));
    // The order keeps the time of the trigger that opened the window.
    assert_eq!(order.time, 0);
}

#[test]
fn other_triggers_joining_a_window_keep_its_reason() {
    let mut m: TriggerMachine<4, 8> = TriggerMachine::new(TriggerConfig {
        post_records: 2,
        level: Some(Level::Error),
        ..TriggerConfig::DEFAULT
    });
    assert_eq!(m.record(&fail(), 0), Act::Start(Reason::FailedLogin));
    let error = RecordInfo {
        level: Level::Error,
        ..log()
    };
    assert_eq!(m.record(&error, 1), Act::None);
    let Act::Dump(order) = m.record(&log(), 2) else {
        panic!("the window closes after 2 records")
    };
    assert_eq!(order.reason, Reason::FailedLogin);
}

/// A dump not taken yet is still due: later triggers join it instead of opening windows,
/// and taking it makes the machine idle again.
#[test]
fn triggers_join_a_dump_that_is_due() {
    let mut m: TriggerMachine = TriggerMachine::new(IMMEDIATE);
    assert_eq!(
        m.on_record(&seq(fail(), 4), 10),
        Action::Dump(Reason::FailedLogin)
    );
    assert!(m.is_due());
    assert_eq!(m.on_record(&fail(), 11), Action::None);
    assert_eq!(m.fire(Reason::Signal(12), 12), Action::None);
    let order = m.take_order().unwrap();
    assert_eq!(
        (order.reason, order.time, order.seq, order.index),
        (Reason::FailedLogin, 10, Some(4), 0)
    );
    assert_eq!(m.take_order(), None);
    assert_eq!(m.on_record(&fail(), 13), Action::Dump(Reason::FailedLogin));
    assert_eq!(m.take_order().map(|o| (o.time, o.index)), Some((13, 1)));
}

/// A death takes over a due dump (same index: no dump goes missing), keeps its scope,
/// and leaves the rate limit's cooldown where the last admitted trigger put it.
#[test]
fn a_death_takes_over_a_due_dump_without_moving_the_cooldown() {
    let mut m: TriggerMachine = TriggerMachine::new(TriggerConfig {
        scope_session: true,
        rate: Some(RateLimit::new(10, 1000, 100)),
        ..IMMEDIATE
    });
    let failed = RecordInfo {
        session: Some(SessionId(9)),
        ..seq(fail(), 2)
    };
    assert_eq!(m.on_record(&failed, 50), Action::Dump(Reason::FailedLogin));
    assert_eq!(
        m.fire(Reason::UntimelyDeath, 60),
        Action::Dump(Reason::UntimelyDeath)
    );
    let order = m.take_order().unwrap();
    assert_eq!(
        (
            order.reason,
            order.time,
            order.seq,
            order.session,
            order.index
        ),
        (Reason::UntimelyDeath, 60, None, Some(SessionId(9)), 0)
    );
    // The cooldown runs from 50 (the failed login), not from the death at 60.
    assert_eq!(
        m.on_record(&fail(), 149),
        Action::Suppressed(Reason::FailedLogin)
    );
    assert_eq!(m.on_record(&fail(), 150), Action::Dump(Reason::FailedLogin));
    assert_eq!(m.take_order().map(|o| o.index), Some(1));
    // A death from idle has no scope and no trigger record.
    assert_eq!(
        m.fire(Reason::UntimelyDeath, 200),
        Action::Dump(Reason::UntimelyDeath)
    );
    let order = m.take_order().unwrap();
    assert_eq!(
        (order.session, order.seq, order.time, order.index),
        (None, None, 200, 2)
    );
}
