//! What each running service costs, for its status: the census gives every
//! member's CPU time, resident memory and age in the same scan that finds the
//! members; a CPU % needs a second look, so the Supervisor keeps what an earlier
//! full status saw ([`CpuMeter`], shared with the blocking task that takes the
//! census) and turns the difference into a share of one core ([`cpu_share`]).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringmaster_os::ServiceCensus;

/// The shortest window a CPU % is taken over. Linux counts CPU time in clock
/// ticks (10 ms), so a shorter one would swing by several % of a core; a full
/// status that comes sooner after the last sample is measured against the sample
/// before it, and is not kept as a sample itself.
pub const MIN_WINDOW: Duration = Duration::from_millis(500);

/// A process by identity: pid and start time.
type Identity = (u32, u64);

/// What one full status saw: the CPU time of each member of every running service.
struct Sample {
    at: Instant,
    cpu: HashMap<Identity, Duration>,
}

/// The samples CPU % is measured against: the last one kept and the one before.
/// Each holds only the members live at its census, so what is gone is dropped
/// with the sample that saw it.
#[derive(Default)]
pub(crate) struct CpuMeter {
    last: Option<Sample>,
    before: Option<Sample>,
}

/// A [`CpuMeter`], shared by the Supervisor with its census tasks.
pub(crate) type SharedMeter = Arc<Mutex<CpuMeter>>;

/// Locks the meter, poisoned or not (it holds plain numbers).
pub(crate) fn lock(meter: &SharedMeter) -> MutexGuard<'_, CpuMeter> {
    meter.lock().unwrap_or_else(|p| p.into_inner())
}

impl CpuMeter {
    /// The CPU % of each service in `found` (a census taken at `at`; `None` for
    /// one whose members' usage is unknown), over the window since the newest
    /// sample at least [`MIN_WINDOW`] old (none: since each process started).
    /// `found` becomes the next sample unless the last one is younger than
    /// [`MIN_WINDOW`].
    pub(crate) fn percents(&mut self, at: Instant, found: &[ServiceCensus]) -> Vec<Option<f64>> {
        let base = [&self.last, &self.before]
            .into_iter()
            .flatten()
            .find(|s| at.saturating_duration_since(s.at) >= MIN_WINDOW);
        let window = base.map(|b| at.saturating_duration_since(b.at));
        let out = found
            .iter()
            .map(|c| {
                let shares: Vec<f64> = c
                    .members
                    .iter()
                    .filter_map(|m| {
                        let u = m.usage?;
                        let then = base.and_then(|b| b.cpu.get(&(m.pid, m.start_time)).copied());
                        Some(cpu_share(u.cpu, u.age, then, window))
                    })
                    .collect();
                (!shares.is_empty()).then(|| round2(100.0 * shares.iter().sum::<f64>()))
            })
            .collect();
        let keep = self
            .last
            .as_ref()
            .is_none_or(|l| at.saturating_duration_since(l.at) >= MIN_WINDOW);
        if keep {
            let cpu = found
                .iter()
                .flat_map(|c| &c.members)
                .filter_map(|m| m.usage.map(|u| ((m.pid, m.start_time), u.cpu)))
                .collect();
            self.before = self.last.take();
            self.last = Some(Sample { at, cpu });
        }
        out
    }
}

/// The share of one core (1.0: one core busy) a process used over a window that
/// ends now, from its CPU time `cpu` and its age now:
/// - seen at the window's start with CPU time `then`: what it used since, over
///   the window;
/// - not seen then (it started since, or only now counts as a member): all it
///   used, over its age or over the window, whichever is longer (what it used
///   before the window, when it is older, is spread over its whole life);
/// - no window (the first look): all it used, over its age.
///
/// Zero when the time to divide by is.
pub fn cpu_share(
    cpu: Duration,
    age: Duration,
    then: Option<Duration>,
    window: Option<Duration>,
) -> f64 {
    let (used, over) = match (window, then) {
        (Some(w), Some(then)) => (cpu.saturating_sub(then), w),
        (Some(w), None) => (cpu, age.max(w)),
        (None, _) => (cpu, age),
    };
    if over.is_zero() {
        0.0
    } else {
        used.as_secs_f64() / over.as_secs_f64()
    }
}

/// Rounded to two decimals (a % to the hundredth).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmaster_os::{Member, Usage};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_process_seen_before_counts_what_it_used_since() {
        // 500 ms of CPU over a 1 s window: half a core.
        assert_eq!(
            cpu_share(ms(1500), ms(9000), Some(ms(1000)), Some(ms(1000))),
            0.5
        );
        // Two busy threads: two cores.
        assert_eq!(
            cpu_share(ms(4000), ms(9000), Some(ms(2000)), Some(ms(1000))),
            2.0
        );
        // Idle.
        assert_eq!(
            cpu_share(ms(1000), ms(9000), Some(ms(1000)), Some(ms(1000))),
            0.0
        );
    }

    #[test]
    fn a_new_process_counts_all_it_used_over_the_window_or_its_life() {
        // Started 200 ms ago within a 1 s window, busy since: 200 ms of the window.
        assert_eq!(cpu_share(ms(200), ms(200), None, Some(ms(1000))), 0.2);
        // Older than the window but not seen at its start (a daemon claimed
        // since): its average over its life.
        assert_eq!(cpu_share(ms(3000), ms(10_000), None, Some(ms(1000))), 0.3);
    }

    #[test]
    fn the_first_look_is_the_average_since_each_process_started() {
        assert_eq!(cpu_share(ms(2500), ms(10_000), None, None), 0.25);
        assert_eq!(cpu_share(ms(0), ms(0), None, None), 0.0);
        // A CPU time lower than the sample's (never seen; a clock oddity) is no
        // negative share.
        assert_eq!(
            cpu_share(ms(10), ms(9000), Some(ms(20)), Some(ms(1000))),
            0.0
        );
    }

    fn census(members: &[(u32, u64, u64)]) -> ServiceCensus {
        ServiceCensus {
            members: members
                .iter()
                .map(|&(pid, cpu_ms, age_ms)| Member {
                    pid,
                    start_time: 7,
                    name: "svc".into(),
                    ports: Vec::new(),
                    usage: Some(Usage {
                        cpu: ms(cpu_ms),
                        rss_bytes: 1,
                        age: ms(age_ms),
                    }),
                })
                .collect(),
            ..ServiceCensus::default()
        }
    }

    #[test]
    fn the_meter_sums_members_keeps_samples_and_prunes_the_gone() {
        let mut m = CpuMeter::default();
        let t0 = Instant::now();
        // First look: each process's average since it started: 0.5 + 0.1 cores.
        let first = m.percents(t0, &[census(&[(1, 5000, 10_000), (2, 1000, 10_000)])]);
        assert_eq!(first, vec![Some(60.0)]);
        // 1 s later: pid 1 used 1 s (a core), pid 2 nothing, pid 3 is new (300 ms
        // old, 150 ms used).
        let t1 = t0 + ms(1000);
        let next = m.percents(
            t1,
            &[census(&[
                (1, 6000, 11_000),
                (2, 1000, 11_000),
                (3, 150, 300),
            ])],
        );
        assert_eq!(next, vec![Some(115.0)]);
        // 100 ms later: too short a window after t1, so measured since t0; not kept.
        let t2 = t1 + ms(100);
        let close = m.percents(t2, &[census(&[(1, 6100, 11_100)])]);
        assert_eq!(close, vec![Some(100.0 * 1100.0 / 1100.0)]);
        assert_eq!(m.last.as_ref().map(|s| s.at), Some(t1));
        // pid 2 and 3 are gone: the next sample kept no longer holds them.
        let t3 = t1 + ms(1000);
        let later = m.percents(t3, &[census(&[(1, 6500, 12_000)])]);
        assert_eq!(later, vec![Some(50.0)]);
        let last = m.last.as_ref().expect("a sample");
        assert_eq!(last.cpu.keys().copied().collect::<Vec<_>>(), vec![(1, 7)]);
        // A service without usage (none read, or no member) has no %.
        let none = m.percents(t3 + ms(1000), &[ServiceCensus::default()]);
        assert_eq!(none, vec![None]);
    }
}
