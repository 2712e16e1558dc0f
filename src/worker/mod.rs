//! The inference thread: owns the device and the model, takes [`Request`]s and answers with
//! [`Event`]s over crossbeam channels. A job that fails or panics becomes an event; the thread and
//! the window live on.

mod backend;
pub mod canvas;
pub mod messages;
pub mod observer;
mod words;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use backend::Reuse;
pub use canvas::{Layout, PREVIEW_MAX_SIDE, TileRect};
pub use messages::*;
use observer::ChannelObserver;

/// Wakes the window (an `egui::Context::request_repaint` in the app, a no-op in headless use).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The window's end of the worker.
pub struct Worker {
    tx: Sender<Request>,
    rx: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
    done: Receiver<()>,
}

impl Worker {
    pub fn spawn(waker: Waker) -> Self {
        let (tx, req_rx) = unbounded();
        let (ev_tx, rx) = unbounded();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("varsr-worker".into())
            .spawn(move || {
                let mut state = WorkerState {
                    engine: None,
                    tx: ev_tx,
                    waker,
                };
                for request in req_rx.iter() {
                    if matches!(request, Request::Shutdown) {
                        break;
                    }
                    state.handle(request);
                    if req_rx.is_empty() {
                        crate::alloc::release_free_memory();
                    }
                }
                let _ = done_tx.send(());
            })
            .ok();
        Self {
            tx,
            rx,
            thread,
            done,
        }
    }

    pub fn send(&self, request: Request) {
        // Only fails when the thread is gone, which `is_alive` reports.
        let _ = self.tx.send(request);
    }

    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Blocks up to `timeout` for the next event (headless use and tests).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Shutdown);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // A job stops at its next scale once cancelled; do not hold the exit hostage longer.
        if self.done.recv_timeout(Duration::from_secs(3)).is_ok() {
            let _ = thread.join();
        }
    }
}

struct WorkerState {
    engine: Option<backend::Loaded>,
    tx: Sender<Event>,
    waker: Waker,
}

/// One generation of a request: a seed, a variant index and optionally locked coarse tokens.
struct Run<'a> {
    job: JobId,
    variant: usize,
    image: &'a InputImage,
    options: JobOptions,
    reuse: Reuse<'a>,
    cancel: &'a CancelFlag,
}

impl<'a> Run<'a> {
    /// A request's only generation (variant 0).
    fn single(
        job: JobId,
        image: &'a InputImage,
        options: JobOptions,
        reuse: Reuse<'a>,
        cancel: &'a CancelFlag,
    ) -> Self {
        Self {
            job,
            variant: 0,
            image,
            options,
            reuse,
            cancel,
        }
    }
}

impl WorkerState {
    fn send(&self, event: Event) {
        let _ = self.tx.send(event);
        (self.waker)();
    }

    fn log(&self, line: impl Into<String>) {
        self.send(Event::Log(line.into()));
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::LoadModel { spec, device } => self.load(spec, device),
            Request::Upscale {
                job,
                image,
                options,
                cancel,
            } => {
                self.run(Run::single(job, &image, options, Reuse::Nothing, &cancel));
            }
            Request::Rerun {
                job,
                image,
                options,
                from_scale,
                tokens,
                cancel,
            } => {
                let reuse = Reuse::Scales {
                    tokens: &tokens,
                    from_scale,
                };
                self.run(Run::single(job, &image, options, reuse, &cancel));
            }
            Request::Resample {
                job,
                image,
                options,
                region,
                kept,
                base,
                cancel,
            } => {
                let reuse = Reuse::AllBut {
                    kept: &kept,
                    rect: region,
                    base: &base,
                };
                self.run(Run::single(job, &image, options, reuse, &cancel));
            }
            Request::Variations {
                job,
                image,
                options,
                n,
                from_scale,
                tokens,
                cancel,
            } => {
                for variant in 0..n {
                    let mut options = options.clone();
                    options.params.seed = options.params.seed.wrapping_add(variant as u64);
                    let ok = self.run(Run {
                        job,
                        variant,
                        image: &image,
                        options,
                        reuse: match tokens.as_deref() {
                            Some(tokens) => Reuse::Scales { tokens, from_scale },
                            None => Reuse::Nothing,
                        },
                        cancel: &cancel,
                    });
                    if !ok {
                        break;
                    }
                }
            }
            Request::Shutdown => {}
        }
    }

    fn load(&mut self, spec: ModelSpec, device: DeviceChoice) {
        // Free the old model first: two release models may not fit in memory together.
        self.engine = None;
        self.log(format!("Loading model {spec:?} on {}…", device.label()));
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| backend::load(&spec, device)));
        match result {
            Ok(Ok(loaded)) => {
                let info = loaded.info.clone();
                for line in &loaded.notes {
                    self.log(line.clone());
                }
                self.log(format!(
                    "Model loaded in {:.1} s: {} on {}",
                    started.elapsed().as_secs_f32(),
                    info.description,
                    info.device
                ));
                self.engine = Some(loaded);
                self.send(Event::ModelLoaded(info));
            }
            Ok(Err(detail)) => {
                let message = words::load_failure(&spec, &detail);
                self.log(format!("Model failed to load: {detail}"));
                self.send(Event::ModelFailed { message });
            }
            Err(panic) => {
                let detail = words::panic_text(&panic);
                self.log(format!("Model loading panicked: {detail}"));
                self.send(Event::ModelFailed {
                    message: format!("The model could not be loaded (internal error: {detail})."),
                });
            }
        }
    }

    /// Runs one generation; false when it did not finish (cancelled or failed).
    fn run(&mut self, run: Run<'_>) -> bool {
        let Run {
            job,
            variant,
            image,
            options,
            reuse,
            cancel,
        } = run;
        if cancel.is_cancelled() {
            self.send(Event::Cancelled {
                job,
                variant,
                partial: None,
            });
            return false;
        }
        let Some(loaded) = self.engine.as_ref() else {
            self.send(Event::Failed {
                job,
                message: words::NO_MODEL.to_string(),
                detail: "no model loaded".into(),
            });
            return false;
        };
        let seed = options.params.seed;
        self.send(Event::Started { job, variant, seed });
        let layout = backend::layout(loaded, image, &options, reuse);
        let num_scales = loaded.info.num_scales;
        let mut observer = ChannelObserver::new(
            job,
            variant,
            self.tx.clone(),
            self.waker.clone(),
            cancel.clone(),
            options.previews,
            layout,
            num_scales,
        );
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            backend::upscale(loaded, image, &options, reuse, &mut observer)
        }));
        let elapsed = started.elapsed();
        match result {
            Ok(Ok((picture, tokens))) => {
                let tokens = Arc::new(tokens);
                self.log(format!(
                    "Job {job}{}: {}×{} → {}×{} in {:.1} s (seed {seed}, guidance {})",
                    variant_suffix(variant),
                    image.picture.width(),
                    image.picture.height(),
                    picture.width(),
                    picture.height(),
                    elapsed.as_secs_f32(),
                    options.params.cfg,
                ));
                self.send(Event::Finished {
                    job,
                    variant,
                    seed,
                    image: picture,
                    tokens,
                    elapsed,
                });
                true
            }
            Ok(Err(crate::pipeline::Error::Cancelled)) => {
                self.log(format!(
                    "Job {job}{} cancelled after {:.1} s",
                    variant_suffix(variant),
                    elapsed.as_secs_f32()
                ));
                self.send(Event::Cancelled {
                    job,
                    variant,
                    partial: observer.partial(),
                });
                false
            }
            Ok(Err(e)) => {
                let detail = e.to_string();
                self.log(format!("Job {job} failed: {detail}"));
                self.send(Event::Failed {
                    job,
                    message: words::run_failure(&detail, &loaded.info.device),
                    detail,
                });
                false
            }
            Err(panic) => {
                let detail = words::panic_text(&panic);
                self.log(format!("Job {job} panicked: {detail}"));
                self.send(Event::Failed {
                    job,
                    message: words::run_failure(&detail, &loaded.info.device),
                    detail,
                });
                false
            }
        }
    }
}

fn variant_suffix(variant: usize) -> String {
    if variant == 0 {
        String::new()
    } else {
        format!(" (variation {})", variant + 1)
    }
}
