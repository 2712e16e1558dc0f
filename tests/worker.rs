//! The inference thread without a window: typed requests in, typed events out, with the tiny
//! random-weight fixture model.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod support;
use support::{collect, fixture_model};
use varsr::worker::{
    CancelFlag, DeviceChoice, Event, InputImage, JobOptions, ModelSpec, Request, Worker,
};

fn image(w: u32, h: u32) -> InputImage {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([
            (x * 7) as u8,
            (y * 5) as u8,
            128,
            if x < 4 { 0 } else { 255 },
        ])
    });
    InputImage::from_picture(Arc::new(img))
}

fn loaded_worker(wakes: Arc<AtomicUsize>) -> Worker {
    let w = Worker::spawn(Arc::new(move || {
        wakes.fetch_add(1, Ordering::Relaxed);
    }));
    w.send(Request::LoadModel {
        spec: ModelSpec::Path(fixture_model()),
        device: DeviceChoice::Cpu,
    });
    let events = collect(&w, |e| {
        matches!(e, Event::ModelLoaded(_) | Event::ModelFailed { .. })
    });
    match events.last() {
        Some(Event::ModelLoaded(info)) => {
            assert_eq!(info.num_scales, 10);
            assert_eq!(info.tile_px, 512);
            assert!(info.untrained, "the fixture is flagged as untrained");
            assert!(
                info.description.contains("parity-d2"),
                "{}",
                info.description
            );
        }
        other => panic!("model did not load: {other:?}"),
    }
    w
}

#[test]
fn an_upscale_reports_every_scale_with_a_preview_then_the_image() {
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = loaded_worker(wakes.clone());
    w.send(Request::Upscale {
        job: 7,
        image: image(24, 16),
        options: JobOptions::default(),
        cancel: CancelFlag::new(),
    });
    let events = collect(&w, |e| {
        matches!(e, Event::Finished { .. } | Event::Failed { .. })
    });
    let mut scales = Vec::new();
    let mut fractions = Vec::new();
    for e in &events {
        match e {
            Event::ScaleDone {
                job,
                scale,
                num_scales,
                preview,
                ..
            } => {
                assert_eq!((*job, *num_scales), (7, 10));
                let p = preview.as_ref().expect("previews were asked for");
                // The preview covers the whole 96×64 output (at most 1024 px).
                assert_eq!(p.dimensions(), (96, 64));
                scales.push(*scale);
            }
            Event::Progress { fraction, .. } => fractions.push(*fraction),
            _ => {}
        }
    }
    assert_eq!(scales, (0..10).collect::<Vec<_>>());
    assert!(
        fractions.windows(2).all(|w| w[1] >= w[0]),
        "progress only grows: {fractions:?}"
    );
    assert!(*fractions.last().unwrap() > 0.9);
    match events.last().unwrap() {
        Event::Finished {
            job, image, tokens, ..
        } => {
            assert_eq!(*job, 7);
            assert_eq!(image.dimensions(), (96, 64));
            // The input's transparent columns stay transparent.
            assert_eq!(image.get_pixel(0, 10).0[3], 0);
            assert_eq!(image.get_pixel(50, 10).0[3], 255);
            assert_eq!(tokens.num_scales(), 10);
            assert_eq!(tokens.per_tile[0][9].len(), 32 * 32);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        wakes.load(Ordering::Relaxed) >= events.len(),
        "every event wakes the window"
    );
}

#[test]
fn a_cancelled_job_stops_early_and_keeps_its_finished_scales() {
    let w = loaded_worker(Arc::new(AtomicUsize::new(0)));
    let cancel = CancelFlag::new();
    // Several tiles, so that the run is long.
    w.send(Request::Upscale {
        job: 1,
        image: image(200, 150),
        options: JobOptions::default(),
        cancel: cancel.clone(),
    });
    let events = collect(&w, |e| matches!(e, Event::ScaleDone { scale: 1, .. }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Started { job: 1, .. }))
    );
    cancel.cancel();
    let rest = collect(&w, |e| {
        matches!(
            e,
            Event::Cancelled { .. } | Event::Finished { .. } | Event::Failed { .. }
        )
    });
    let last_scale = rest
        .iter()
        .filter_map(|e| match e {
            Event::ScaleDone { scale, .. } => Some(*scale),
            _ => None,
        })
        .max()
        .unwrap_or(1);
    assert!(
        last_scale < 9,
        "stopped at a scale boundary, not at the end"
    );
    match rest.last().unwrap() {
        Event::Cancelled { job, partial, .. } => {
            assert_eq!(*job, 1);
            let p = partial.as_ref().expect("a partial picture");
            assert_eq!(p.dimensions(), (800, 600));
            assert!(
                p.pixels().any(|px| px.0[3] == 255),
                "finished tiles are in it"
            );
        }
        other => panic!("{other:?}"),
    }

    // A job cancelled before it starts answers at once, and the worker carries on.
    let cancel = CancelFlag::new();
    cancel.cancel();
    w.send(Request::Upscale {
        job: 2,
        image: image(8, 8),
        options: JobOptions::default(),
        cancel,
    });
    let events = collect(&w, |e| matches!(e, Event::Cancelled { job: 2, .. }));
    assert!(!events.iter().any(|e| matches!(e, Event::ScaleDone { .. })));
    assert!(w.is_alive());
}

#[test]
fn without_a_model_a_job_fails_in_plain_words() {
    let w = Worker::spawn(Arc::new(|| {}));
    w.send(Request::LoadModel {
        spec: ModelSpec::Path("/nonexistent/varsr".into()),
        device: DeviceChoice::Cpu,
    });
    let events = collect(&w, |e| {
        matches!(e, Event::ModelLoaded(_) | Event::ModelFailed { .. })
    });
    match events.last().unwrap() {
        Event::ModelFailed { message } => {
            assert!(message.contains("/nonexistent/varsr"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    w.send(Request::Upscale {
        job: 3,
        image: image(8, 8),
        options: JobOptions::default(),
        cancel: CancelFlag::new(),
    });
    let events = collect(&w, |e| matches!(e, Event::Failed { .. }));
    match events.last().unwrap() {
        Event::Failed { job, message, .. } => {
            assert_eq!(*job, 3);
            assert!(message.starts_with("No model is loaded"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(w.is_alive());
}
