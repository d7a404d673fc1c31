//! The dump's k-way merge: the shards' records in time order, numbered `0..n`, read one
//! record at a time.
//!
//! A dump holds what the shards held when it began (each shard's positions, taken under one
//! short lock each). Each shard is a *lane*: a cursor into its ring and the lane's next
//! record, peeked. The merge hands out the oldest peeked record (ties: the lower shard
//! first), reading it again under its shard's lock, so producers wait for at most one
//! record copy, and no copy of a ring is made. A record evicted before it is read is
//! counted as lost, never read torn.
//!
//! Numbering: records get `0..n` in merge order, where `n` is the number of records the
//! shards held; a lost record keeps its number (a reader sees a gap). Where a lane's lost
//! records stood among the other lanes' is unknown (they are gone), so they are reported
//! when the lane's next record comes up, or at the end. A dump's header names its trigger
//! record by number before any record is written, so a first pass over the same snapshot
//! finds that number ([`Merge::find`]); the second pass gives the trigger record that
//! number even if records before it were evicted in between, by reporting that many of
//! the records lost so far just before it.

use flightrec_core::ring::{Cursor, Read, RecordMeta, RingStats};
use flightrec_core::RingError;

use super::shards::{Shard, ShardSeq, Shards};

/// One step of the merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A record: its payload is the first `len` bytes of the output buffer.
    Record {
        /// Its number in the dump.
        number: u64,
        /// Its shard and its sequence number there.
        id: ShardSeq,
        /// Its header.
        meta: RecordMeta,
        /// Payload bytes.
        len: usize,
    },
    /// The next `n` numbers belong to records evicted before they could be read.
    Lost(u64),
    /// Every record of the snapshot has been handed out or reported lost.
    End,
}

/// One shard's part of the merge.
#[derive(Clone, Copy, Debug)]
struct Lane {
    /// Where the lane's unread records begin.
    cursor: Cursor,
    /// The sequence number the shard's next record had when the dump began: the lane ends
    /// there (records added later are left for the next dump).
    end: u64,
    /// The lane's next record, peeked: its header, and a cursor to read it again.
    head: Option<(Cursor, RecordMeta)>,
    /// Records of this lane evicted before they were read, not yet reported.
    lost: u64,
}

impl Lane {
    /// Peeks the lane's next record (its payload is copied to `scratch` and dropped: the
    /// ring gives a record's header only with its payload).
    fn peek(&mut self, shard: &Shard, scratch: &mut [u8]) -> Result<(), RingError> {
        while self.head.is_none() && self.cursor.seq() < self.end {
            let at = self.cursor;
            let unread = self.end - at.seq();
            match shard.read(&mut self.cursor, scratch)? {
                Read::Record { meta, .. } => self.head = Some((at, meta)),
                Read::Lost(n) => self.lost += n.min(unread),
                // Not with a scratch buffer the size of a shard's ring.
                Read::TooBig { .. } => self.lost += 1,
                // The ring holds fewer records than it did: only if it was cleared.
                Read::End => {
                    self.lost += unread;
                    self.end = at.seq();
                }
            }
        }
        Ok(())
    }

    /// Reads the peeked record again, into `out`; `None` if it was evicted since (counted
    /// as lost).
    fn take(
        &mut self,
        shard: &Shard,
        out: &mut [u8],
    ) -> Result<Option<(RecordMeta, usize)>, RingError> {
        let Some((mut at, _)) = self.head.take() else {
            return Ok(None);
        };
        let unread = self.end.saturating_sub(at.seq());
        match shard.read(&mut at, out)? {
            Read::Record { meta, len, .. } => Ok(Some((meta, len))),
            Read::Lost(n) => {
                // The peeked record and maybe more are gone: go on from the oldest one left
                // (`at` now points there), which is not behind the lane's cursor.
                self.lost += n.min(unread);
                self.cursor = at;
                Ok(None)
            }
            Read::TooBig { .. } | Read::End => {
                self.lost += 1;
                Ok(None)
            }
        }
    }
}

/// The merge of a recorder's shards.
pub(crate) struct Merge<'a> {
    shards: &'a Shards,
    /// The lanes as they were when the dump began, for a second pass.
    start: Vec<Lane>,
    lanes: Vec<Lane>,
    /// Number of the next step's first record.
    next: u64,
    /// The trigger record, and the number a first pass gave it.
    trigger: Option<(ShardSeq, u64)>,
    stats: RingStats,
}

impl<'a> Merge<'a> {
    /// A merge of what `shards` hold now (one short lock per shard).
    pub(crate) fn new(shards: &'a Shards) -> Self {
        let mut stats = RingStats::default();
        let lanes: Vec<Lane> = shards
            .iter()
            .map(|shard| {
                let (s, cursor) = shard.snapshot();
                stats.next_seq += s.next_seq - s.first_seq;
                stats.records += s.records;
                stats.used += s.used;
                stats.capacity += s.capacity;
                stats.rejected += s.rejected;
                stats.evicted += s.evicted;
                Lane {
                    cursor,
                    end: s.next_seq,
                    head: None,
                    lost: 0,
                }
            })
            .collect();
        Merge {
            shards,
            start: lanes.clone(),
            lanes,
            next: 0,
            trigger: None,
            stats,
        }
    }

    /// The snapshot's counters, as one ring's: records numbered `0..next_seq`, and the
    /// shards' bytes, capacities, refusals and evictions summed.
    pub(crate) fn stats(&self) -> RingStats {
        self.stats
    }

    /// Number of the next step's first record.
    pub(crate) fn position(&self) -> u64 {
        self.next
    }

    /// Runs a pass over the snapshot and returns the number `id` gets (`None`: not in the
    /// snapshot, or evicted before it was read); then starts again from the beginning,
    /// giving `id` that number (see the module's docs). `scratch` must hold a shard's
    /// largest record.
    pub(crate) fn find(
        &mut self,
        id: ShardSeq,
        scratch: &mut [u8],
    ) -> Result<Option<u64>, RingError> {
        let mut found = None;
        loop {
            match self.next(scratch)? {
                Step::Record { number, id: r, .. } if r == id => found = Some(number),
                Step::End => break,
                Step::Record { .. } | Step::Lost(_) => {}
            }
        }
        self.lanes.clone_from(&self.start);
        self.next = 0;
        self.trigger = found.map(|number| (id, number));
        Ok(found)
    }

    /// The next record (its payload in `out`, which must hold a shard's largest record),
    /// or lost records, or the end.
    pub(crate) fn next(&mut self, out: &mut [u8]) -> Result<Step, RingError> {
        let shards = self.shards;
        loop {
            for (lane, shard) in self.lanes.iter_mut().zip(shards.iter()) {
                lane.peek(shard, out)?;
            }
            let oldest = self
                .lanes
                .iter()
                .enumerate()
                .filter_map(|(i, lane)| lane.head.map(|(_, meta)| (meta.time, i)))
                .min();
            let Some((_, i)) = oldest else {
                let lost = self.take_lost(u64::MAX);
                return Ok(self.lost(lost).unwrap_or(Step::End));
            };
            let (
                Some(shard),
                Some(&Lane {
                    head: Some((at, _)),
                    ..
                }),
            ) = (shards.get(i), self.lanes.get(i))
            else {
                return Err(RingError::Corrupt);
            };
            let id = ShardSeq::new(i, at.seq());
            let lost = self.lost_before(i, id);
            if let Some(step) = self.lost(lost) {
                return Ok(step);
            }
            let lane = self.lanes.get_mut(i).ok_or(RingError::Corrupt)?;
            if let Some((meta, len)) = lane.take(shard, out)? {
                let number = self.next;
                self.next += 1;
                return Ok(Step::Record {
                    number,
                    id,
                    meta,
                    len,
                });
            }
            // Evicted since it was peeked: counted in its lane; pick again.
        }
    }

    /// Lost records to report before lane `i`'s next record, `id`: the lane's own, except
    /// before the trigger record, which gets the number the first pass gave it: as many
    /// lost records as leave it that number (the lane's own first: they surely came before
    /// it), and no more.
    fn lost_before(&mut self, i: usize, id: ShardSeq) -> u64 {
        let next = self.next;
        let trigger_number = self.trigger.filter(|(t, _)| *t == id).map(|(_, n)| n);
        let Some(lane) = self.lanes.get_mut(i) else {
            return 0;
        };
        match trigger_number {
            None => std::mem::take(&mut lane.lost),
            Some(number) => {
                let missing = number.saturating_sub(next);
                let own = lane.lost.min(missing);
                lane.lost -= own;
                own + self.take_lost(missing - own)
            }
        }
    }

    /// A step reporting `n` lost records, numbered from here; `None` for none.
    fn lost(&mut self, n: u64) -> Option<Step> {
        (n > 0).then(|| {
            self.next += n;
            Step::Lost(n)
        })
    }

    /// Takes up to `n` unreported lost records, from any lanes.
    fn take_lost(&mut self, n: u64) -> u64 {
        let mut taken = 0;
        for lane in self.lanes.iter_mut() {
            let t = lane.lost.min(n - taken);
            lane.lost -= t;
            taken += t;
        }
        taken
    }
}
