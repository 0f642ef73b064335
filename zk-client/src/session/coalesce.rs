//! Reply coalescing: fewer wake-ups per reply while a slow server works through a deep queue.
//!
//! With hundreds of requests in flight to a server that answers a few dozen per millisecond,
//! replies trickle in a handful at a time, and reading each handful as it arrives costs the
//! client a wake-up, a `read` and (for the requests the replies unblock) a `write`: most of
//! its CPU goes into the kernel. Pausing reads for about a millisecond lets a batch build up
//! instead. The pause only happens when the server would stay busy for at least
//! [`QUEUE_PAUSES`] pauses at the pace it has been answering, so it never runs dry because
//! the client waited: throughput is unchanged and only replies of such a burst are delayed,
//! by at most the pause. A fast server, a shallow queue or a long read never pauses.

use std::time::{Duration, Instant};

/// Only with at least this many requests in flight.
pub(crate) const MIN_IN_FLIGHT: usize = 128;
/// Only after a read shorter than this (a long read is already a batch).
pub(crate) const MAX_BYTES: usize = 16 * 1024;
/// Only while the queued requests keep the server busy for this many pauses.
pub(crate) const QUEUE_PAUSES: u32 = 10;
/// The server's pace is measured over windows at least this long.
const WINDOW: Duration = Duration::from_millis(8);

/// Measures the server's reply pace and decides when to pause reads.
#[derive(Debug)]
pub(crate) struct Coalescer {
    pause: Duration,
    /// The current measuring window: when it started and the frames received since.
    window: Option<(Instant, u64)>,
    /// The last complete window: frames received and its length.
    pace: Option<(u64, Duration)>,
}

impl Coalescer {
    pub(crate) fn new(pause: Duration) -> Coalescer {
        Coalescer {
            pause,
            window: None,
            pace: None,
        }
    }

    /// Called after each read of `bytes` that completed `frames` frames, with the number of
    /// requests in flight before and after it; returns how long to wait before the next
    /// read, if at all.
    pub(crate) fn after_read(
        &mut self,
        now: Instant,
        bytes: usize,
        frames: u64,
        in_flight_before: usize,
        in_flight_after: usize,
    ) -> Option<Duration> {
        if in_flight_before < MIN_IN_FLIGHT {
            // The queue ran shallow: the pace measured so far says nothing about the next
            // burst (the time between includes the client's own idleness).
            self.window = None;
            self.pace = None;
            return None;
        }
        match &mut self.window {
            None => self.window = Some((now, 0)),
            Some((start, count)) => {
                *count += frames;
                let length = now.saturating_duration_since(*start);
                if length >= WINDOW {
                    self.pace = Some((*count, length));
                    self.window = Some((now, 0));
                }
            }
        }
        if bytes >= MAX_BYTES || in_flight_after < MIN_IN_FLIGHT {
            return None;
        }
        let (count, length) = self.pace?;
        if count == 0 {
            // Nothing at all in a whole window: the server is stalled, not slow; pausing
            // would gain nothing.
            return None;
        }
        // Time for the server to answer what is queued, at the measured pace.
        let in_flight = u32::try_from(in_flight_after).unwrap_or(u32::MAX);
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let drain = length.saturating_mul(in_flight) / count;
        (drain >= self.pause.saturating_mul(QUEUE_PAUSES)).then_some(self.pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_millis(1);

    /// Feeds reads of `frames` frames every `every` with 1 000 in flight; returns how many
    /// of the last 100 decisions paused.
    fn run(every: Duration, frames: u64) -> usize {
        let mut c = Coalescer::new(PAUSE);
        let mut now = Instant::now();
        let mut paused = 0;
        for i in 0..200 {
            now += every;
            let decision = c.after_read(now, 200 * frames as usize, frames, 1_000, 1_000);
            if i >= 100 && decision.is_some() {
                paused += 1;
            }
        }
        paused
    }

    #[test]
    fn a_slow_server_with_a_deep_queue_pauses() {
        // 5 replies every 200 µs: 25 per ms, 1 000 queued = 40 ms of work.
        assert_eq!(run(Duration::from_micros(200), 5), 100);
    }

    #[test]
    fn a_fast_server_never_pauses() {
        // 50 replies every 200 µs: 250 per ms, 1 000 queued = 4 ms of work (< 10 pauses).
        assert_eq!(run(Duration::from_micros(200), 50), 0);
    }

    #[test]
    fn a_single_slow_read_after_a_burst_does_not_pause() {
        // The pace comes from whole windows, not from one read's gap.
        let mut c = Coalescer::new(PAUSE);
        let mut now = Instant::now();
        for _ in 0..100 {
            now += Duration::from_micros(100);
            assert_eq!(c.after_read(now, 10_000, 50, 1_000, 1_000), None);
        }
        now += Duration::from_micros(700);
        assert_eq!(c.after_read(now, 192, 1, 1_000, 999), None);
    }

    #[test]
    fn a_shallow_queue_or_a_long_read_never_pauses() {
        let mut c = Coalescer::new(PAUSE);
        let mut now = Instant::now();
        for _ in 0..100 {
            now += Duration::from_micros(200);
            let _ = c.after_read(now, 1_000, 5, 1_000, 1_000);
        }
        now += Duration::from_micros(200);
        assert_eq!(c.after_read(now, 1_000, 5, 1_000, 100), None);
        assert_eq!(c.after_read(now, MAX_BYTES, 5, 1_000, 1_000), None);
        // The queue ran shallow: the pace is forgotten.
        assert_eq!(c.after_read(now, 1_000, 5, 10, 10), None);
        now += Duration::from_micros(200);
        assert_eq!(c.after_read(now, 1_000, 5, 1_000, 1_000), None);
    }
}
