//! Work over many processes, split between a few threads: the scan of the process
//! table and the fd scan that finds socket holders both read a few files of every
//! process, and with 1 000 processes that is tens of milliseconds on one thread.
use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this many items the work runs on the calling thread only.
const PARALLEL_FROM: usize = 128;
/// At most this many threads work (the calling thread among them).
const MAX_THREADS: usize = 4;
/// Items a thread takes at a time.
const BATCH: usize = 32;

/// Runs `work` over `items` in batches, on up to [`MAX_THREADS`] threads (as many
/// as the machine has cores), and gathers what each call pushed, in no particular
/// order. Each thread makes its own scratch state with `state`. Threads take small
/// batches from a shared counter, so that a batch of slow items does not leave the
/// others idle; the calling thread works too.
pub(crate) fn in_batches<T, R, S>(
    items: &[T],
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &[T], &mut Vec<R>) + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let threads = if items.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_THREADS)
    };
    let next = AtomicUsize::new(0);
    let run = || {
        let mut found = Vec::new();
        let mut scratch = state();
        loop {
            let start = next.fetch_add(BATCH, Ordering::Relaxed);
            if start >= items.len() {
                return found;
            }
            work(
                &mut scratch,
                &items[start..(start + BATCH).min(items.len())],
                &mut found,
            );
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(run)).collect();
        let mut found = run();
        for helper in helpers {
            found.extend(helper.join().unwrap_or_default());
        }
        found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_worked_once_whatever_the_count() {
        for n in [0, 1, 31, 32, 127, 128, 1000] {
            let items: Vec<u32> = (0..n).collect();
            let mut got = in_batches(&items, || (), |_, batch, out| out.extend_from_slice(batch));
            got.sort_unstable();
            assert_eq!(got, items, "{n} items");
        }
    }
}
