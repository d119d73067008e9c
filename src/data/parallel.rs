//! Decoding many images on several threads, in order, with progress and a deterministic error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Items handed to a thread at a time.
const CHUNK: usize = 64;

/// Runs `decode(i)` for every `i` in `0..n` on `threads` threads and returns the results in index
/// order. On failure, the error of the lowest failing index is returned, whatever the timing, so a
/// broken dataset always reports the same file. `progress(done)` is called after each chunk.
pub fn decode_all<T, E, F, P>(n: usize, threads: usize, decode: F, progress: P) -> Result<Vec<T>, E>
where
    T: Send,
    E: Send,
    F: Fn(usize) -> Result<T, E> + Sync,
    P: Fn(usize) + Sync,
{
    let chunks = n.div_ceil(CHUNK);
    let threads = threads.clamp(1, chunks.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // Lowest index that failed so far; chunks starting after it are skipped.
    let first_failure = AtomicUsize::new(usize::MAX);
    let results: Mutex<Vec<(usize, Vec<T>)>> = Mutex::new(Vec::with_capacity(chunks));
    let errors: Mutex<Vec<(usize, E)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let start = c * CHUNK;
                if start > first_failure.load(Ordering::Relaxed) {
                    continue;
                }
                let end = (start + CHUNK).min(n);
                let mut out = Vec::with_capacity(end - start);
                for i in start..end {
                    match decode(i) {
                        Ok(v) => out.push(v),
                        Err(e) => {
                            first_failure.fetch_min(i, Ordering::Relaxed);
                            lock(&errors).push((i, e));
                            break;
                        }
                    }
                }
                let finished = out.len();
                lock(&results).push((start, out));
                progress(done.fetch_add(finished, Ordering::Relaxed) + finished);
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some((_, e)) = errors.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_unstable_by_key(|(start, _)| *start);
    let mut all = Vec::with_capacity(n);
    for (_, part) in results {
        all.extend(part);
    }
    Ok(all)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let out: Vec<usize> = decode_all(1000, 4, |i| Ok::<_, ()>(i * 2), |_| {}).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(out.iter().enumerate().all(|(i, &v)| v == i * 2));
    }

    #[test]
    fn the_lowest_failing_index_is_reported() {
        for threads in [1, 3, 8] {
            let r = decode_all(
                1000,
                threads,
                |i| {
                    if i == 700 || i == 130 || i == 131 {
                        Err(i)
                    } else {
                        Ok(i)
                    }
                },
                |_| {},
            );
            assert_eq!(r, Err(130));
        }
    }

    #[test]
    fn progress_reaches_the_total() {
        let max = AtomicUsize::new(0);
        decode_all(300, 2, Ok::<_, ()>, |d| {
            max.fetch_max(d, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(max.load(Ordering::Relaxed), 300);
        let empty: Vec<u8> = decode_all(0, 4, |_| Ok::<u8, ()>(0), |_| {}).unwrap();
        assert!(empty.is_empty());
    }
}
