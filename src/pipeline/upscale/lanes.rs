//! Tile batches on several CPU threads at once ("lanes"), each lane single-threaded in spirit.
//!
//! The built-in model's tiles are many small matrix products (K = 128) and element-wise passes, for
//! which splitting every operation over both cores costs more in hand-offs than it gains: two
//! single-threaded processes upscaling at once finished a 128→512 image per 6.9 s between them,
//! one two-thread process took 8.7–9.5 s. Lanes capture that in one process. The lanes run on
//! rayon's pool (matrix products and the hand-written kernels split further only when a core is
//! idle, e.g. while the last batch runs), candle's own element-wise operations run inline (see
//! [`crate::ops::cpu::pin_thread_count`]). The observer is not thread-safe, so the lanes send
//! their events to the calling thread, which forwards them and polls for cancellation.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use candle_core::Tensor;
use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::pipeline::events::{Observer, Progress, ScaleEvent};
use crate::pipeline::{Error, Result};

/// How often the calling thread asks the observer whether to stop while no event arrives.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// What a lane reports; `usize` is the item index.
enum Message<T> {
    Scale(usize, ScaleEvent),
    Progress(usize, Progress),
    Tap(usize, String, Tensor),
    Done(usize, Result<T>),
}

/// The observer a lane gives the engine: events go to the calling thread.
struct LaneObserver<'a, T> {
    tx: &'a Sender<Message<T>>,
    batch: usize,
    stop: &'a AtomicBool,
    previews: bool,
    taps: bool,
}

impl<T> Observer for LaneObserver<'_, T> {
    fn scale_done(&mut self, event: &ScaleEvent) {
        // A closed channel means the caller is unwinding; nothing is left to tell.
        let _ = self.tx.send(Message::Scale(self.batch, event.clone()));
    }

    fn progress(&mut self, progress: &Progress) {
        let _ = self
            .tx
            .send(Message::Progress(self.batch, progress.clone()));
    }

    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn wants_previews(&self) -> bool {
        self.previews
    }

    fn tap(&mut self, name: &str, value: &Tensor) {
        let _ = self
            .tx
            .send(Message::Tap(self.batch, name.to_owned(), value.clone()));
    }

    fn wants_taps(&self) -> bool {
        self.taps
    }
}

/// Runs `work` for items `0..count` on `lanes` threads, each taking the next item not yet started,
/// and returns the outputs in item order. Events reach `observer` on the calling thread, after
/// `select(observer, item)` names the item they come from. The first error stops the other lanes
/// at their next scale or refiner step and is returned (a failure rather than the cancellations it
/// caused); so does the observer's cancellation, polled while the lanes work.
///
/// One lane runs the items in turn on the calling thread, with `observer` itself; so does a caller
/// already on rayon's pool, which would otherwise wait inside it for lanes queued behind itself.
pub(super) fn run<O: Observer, T: Send>(
    count: usize,
    lanes: usize,
    observer: &mut O,
    select: impl Fn(&mut O, usize),
    work: impl Fn(usize, &mut dyn Observer) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if lanes.min(count) <= 1 || rayon::current_thread_index().is_some() {
        let mut outs = Vec::with_capacity(count);
        for i in 0..count {
            if observer.cancelled() {
                return Err(Error::Cancelled);
            }
            select(observer, i);
            outs.push(work(i, observer)?);
        }
        return Ok(outs);
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let previews = observer.wants_previews();
    let taps = observer.wants_taps();
    let mut outs: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut failure: Option<Error> = None;
    let work = &work;

    rayon::in_place_scope(|scope| {
        for _ in 0..lanes.min(count) {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move |_| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let mut lane = LaneObserver {
                        tx: &tx,
                        batch: i,
                        stop,
                        previews,
                        taps,
                    };
                    // A panic stops the other lanes too before it reaches the caller (rayon
                    // hands it on when the scope ends).
                    let out = catch_unwind(AssertUnwindSafe(|| work(i, &mut lane))).unwrap_or_else(
                        |panic| {
                            stop.store(true, Ordering::Relaxed);
                            resume_unwind(panic)
                        },
                    );
                    if out.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let _ = tx.send(Message::Done(i, out));
                }
            });
        }
        drop(tx);
        loop {
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(Message::Scale(i, event)) => {
                    select(observer, i);
                    observer.scale_done(&event);
                }
                Ok(Message::Progress(i, progress)) => {
                    select(observer, i);
                    observer.progress(&progress);
                }
                Ok(Message::Tap(i, name, value)) => {
                    select(observer, i);
                    observer.tap(&name, &value);
                }
                Ok(Message::Done(i, Ok(out))) => outs[i] = Some(out),
                Ok(Message::Done(_, Err(e))) => {
                    if failure
                        .as_ref()
                        .is_none_or(|f| matches!(f, Error::Cancelled))
                    {
                        failure = Some(e);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if observer.cancelled() {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });

    if let Some(e) = failure {
        return Err(e);
    }
    // An item without output was never started: the run was stopped.
    outs.into_iter()
        .map(|o| o.ok_or(Error::Cancelled))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Records what reaches the calling thread, and cancels after `cancel_after` scale events.
    #[derive(Default)]
    struct Record {
        thread: Option<std::thread::ThreadId>,
        scales: Vec<(usize, usize)>,
        selected: usize,
        cancel_after: Option<usize>,
        foreign_thread_events: usize,
    }

    impl Observer for Record {
        fn scale_done(&mut self, event: &ScaleEvent) {
            if Some(std::thread::current().id()) != self.thread {
                self.foreign_thread_events += 1;
            }
            self.scales.push((self.selected, event.scale));
        }

        fn cancelled(&self) -> bool {
            self.cancel_after.is_some_and(|n| self.scales.len() >= n)
        }
    }

    fn event(scale: usize) -> ScaleEvent {
        ScaleEvent {
            tile: 0,
            num_tiles: 1,
            scale,
            num_scales: 3,
            pn: 1,
            tokens: Vec::new(),
            previews: Vec::new(),
        }
    }

    /// Three scales an item, stopping when asked as the engine does.
    fn scales(i: usize, lane: &mut dyn Observer) -> Result<usize> {
        for k in 0..3 {
            if lane.cancelled() {
                return Err(Error::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(2));
            lane.scale_done(&event(k));
        }
        Ok(i * 10)
    }

    /// Work whose item 1 ends with `broken()` once the other lane is under way; counts the items
    /// started.
    fn broken_item_1(
        started: &AtomicUsize,
        broken: fn() -> Result<usize>,
    ) -> impl Fn(usize, &mut dyn Observer) -> Result<usize> + Sync + '_ {
        move |i, lane| {
            started.fetch_add(1, Ordering::Relaxed);
            if i == 1 {
                std::thread::sleep(Duration::from_millis(5));
                return broken();
            }
            scales(i, lane)
        }
    }

    fn record() -> Record {
        Record {
            thread: Some(std::thread::current().id()),
            ..Record::default()
        }
    }

    #[test]
    fn outputs_come_in_item_order_and_events_on_the_calling_thread() {
        for lanes in [1, 2] {
            let mut rec = record();
            let out = run(7, lanes, &mut rec, |r, i| r.selected = i, scales).unwrap();
            assert_eq!(out, vec![0, 10, 20, 30, 40, 50, 60]);
            assert_eq!(rec.foreign_thread_events, 0);
            // Every item's three scales arrived, attributed to that item, in order within it.
            for i in 0..7 {
                let ks: Vec<usize> = rec
                    .scales
                    .iter()
                    .filter(|(item, _)| *item == i)
                    .map(|(_, k)| *k)
                    .collect();
                assert_eq!(ks, vec![0, 1, 2], "{lanes} lanes, item {i}");
            }
            if lanes == 1 {
                // One lane: the items one after another.
                let items: Vec<usize> = rec.scales.iter().map(|(i, _)| *i).collect();
                assert!(items.windows(2).all(|w| w[0] <= w[1]), "{items:?}");
            }
        }
    }

    #[test]
    fn a_failure_is_returned_rather_than_the_cancellations_it_causes() {
        let started = AtomicUsize::new(0);
        let work = broken_item_1(&started, || Err(Error::Invalid("item 1 is broken".into())));
        let mut rec = record();
        match run(40, 2, &mut rec, |_, _| {}, work) {
            Err(Error::Invalid(m)) => assert_eq!(m, "item 1 is broken"),
            other => panic!("expected the failure, got {other:?}"),
        }
        // The other lane stopped instead of working through all 40 items.
        assert!(started.load(Ordering::Relaxed) < 40);
    }

    #[test]
    fn a_panic_reaches_the_caller_and_stops_the_other_lanes() {
        let started = AtomicUsize::new(0);
        let work = broken_item_1(&started, || panic!("item 1 panics"));
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run(40, 2, &mut record(), |_, _| {}, work)
        }));
        let message = caught.expect_err("the panic must reach the caller");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"item 1 panics"));
        assert!(started.load(Ordering::Relaxed) < 40);
    }

    #[test]
    fn the_observers_cancellation_stops_every_lane() {
        for lanes in [1, 2] {
            let started = AtomicUsize::new(0);
            let work = |i, lane: &mut dyn Observer| {
                started.fetch_add(1, Ordering::Relaxed);
                scales(i, lane)
            };
            let mut rec = Record {
                cancel_after: Some(4),
                ..record()
            };
            assert!(matches!(
                run(50, lanes, &mut rec, |_, _| {}, work),
                Err(Error::Cancelled)
            ));
            assert!(started.load(Ordering::Relaxed) < 50, "{lanes} lanes");
        }
    }

    #[test]
    fn lanes_run_at_the_same_time() {
        if rayon::current_num_threads() < 2 {
            return; // one thread cannot show it
        }
        // Item 0 waits for item 1 to start: with one item at a time it would time out.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let work = |i: usize, _: &mut dyn Observer| match i {
            0 => rx
                .recv_timeout(Duration::from_secs(20))
                .map_err(|_| Error::Invalid("item 1 never ran beside item 0".into())),
            _ => tx.send(()).map_err(|e| Error::Invalid(e.to_string())),
        };
        run(2, 2, &mut record(), |_, _| {}, work).unwrap();
    }
}
