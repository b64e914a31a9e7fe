//! An ordered parallel map.
//!
//! A producer (the calling thread) makes batches; `workers` threads each
//! transform batches with their own worker state (an enricher, a matcher);
//! one consumer receives the results strictly in production order. Both
//! channels are bounded, so a slow consumer holds back the producer and
//! memory stays bounded.

use crossbeam_channel::bounded;
use std::collections::BTreeMap;
use std::thread;

/// Runs `produce`, which pushes batches through the `emit` callback it is
/// given, transforms each batch with a per-thread worker made by
/// `make_worker`, and feeds the results in order to `consume`.
///
/// Returns what `produce` returned. If `consume` fails, production stops
/// at the next batch and the error is returned.
pub fn run<In, Out, W, P, R, E>(
    workers: usize,
    make_worker: impl Fn() -> W + Sync,
    produce: P,
    mut consume: impl FnMut(Out) -> Result<(), E> + Send,
) -> Result<R, E>
where
    In: Send,
    Out: Send,
    W: FnMut(In) -> Out,
    P: FnOnce(&mut dyn FnMut(In) -> bool) -> R,
    E: Send,
{
    let workers = workers.max(1);
    let (in_tx, in_rx) = bounded::<(u64, In)>(workers * 4);
    let (out_tx, out_rx) = bounded::<(u64, Out)>(workers * 4);
    let (stop_tx, stop_rx) = bounded::<()>(1);
    thread::scope(|s| {
        for _ in 0..workers {
            let in_rx = in_rx.clone();
            let out_tx = out_tx.clone();
            let make_worker = &make_worker;
            // Named, so a profile tells the stages apart.
            let spawned = thread::Builder::new()
                .name("tw-worker".into())
                .spawn_scoped(s, move || {
                    let mut work = make_worker();
                    for (seq, batch) in in_rx {
                        if out_tx.send((seq, work(batch))).is_err() {
                            break;
                        }
                    }
                });
            spawned.expect("spawning a worker thread");
        }
        drop(out_tx);
        drop(in_rx);
        let consumer = thread::Builder::new()
            .name("tw-consumer".into())
            .spawn_scoped(s, move || {
                let mut next = 0u64;
                let mut pending = BTreeMap::new();
                let mut result = Ok(());
                for (seq, out) in out_rx {
                    if result.is_err() {
                        continue; // drain so workers can finish
                    }
                    pending.insert(seq, out);
                    while let Some(out) = pending.remove(&next) {
                        next += 1;
                        if let Err(e) = consume(out) {
                            result = Err(e);
                            let _ = stop_tx.try_send(());
                            break;
                        }
                    }
                }
                result
            });
        let consumer = consumer.expect("spawning the consumer thread");
        let mut seq = 0u64;
        let r = produce(&mut |batch| {
            if !stop_rx.is_empty() {
                return false;
            }
            let ok = in_tx.send((seq, batch)).is_ok();
            seq += 1;
            ok
        });
        drop(in_tx);
        let consumed = consumer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        consumed.map(|()| r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_production_order() {
        let mut seen = Vec::new();
        let n = run(
            3,
            || {
                |x: u64| {
                    // Uneven work so that workers finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros((x * 7919) % 300));
                    x * 2
                }
            },
            |emit| {
                for i in 0..500 {
                    assert!(emit(i));
                }
                500
            },
            |y| {
                seen.push(y);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(n, 500);
        assert_eq!(seen, (0..500).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_failing_consumer_stops_production() {
        let mut produced = 0;
        let r = run(
            2,
            || |x: u32| x,
            |emit| {
                for i in 0..100_000 {
                    if !emit(i) {
                        break;
                    }
                    produced += 1;
                }
            },
            |y| if y == 10 { Err("full disk") } else { Ok(()) },
        );
        assert_eq!(r, Err("full disk"));
        assert!(produced < 100_000);
    }
}
