//! The inference thread as the app runs it: `init_process` first, so that candle's element-wise
//! operations are inline and tile batches run side by side, one per core ("lanes"). A binary of
//! its own because `init_process` sets the environment before any thread exists, which the other
//! test binaries' parallel tests cannot have.

use std::sync::Arc;

mod support;
use support::{collect, fixture_model};
use varsr::worker::{
    CancelFlag, DeviceChoice, Event, InputImage, JobOptions, ModelSpec, Request, Stage, Worker,
};

fn upscale(w: &Worker, job: u64, cancel: CancelFlag) {
    let img = image::RgbaImage::from_fn(200, 150, |x, y| {
        image::Rgba([(x * 7) as u8, (y * 5) as u8, 128, 255])
    });
    w.send(Request::Upscale {
        job,
        image: InputImage::from_picture(Arc::new(img)),
        options: JobOptions::default(),
        cancel,
    });
}

#[test]
fn a_job_on_lanes_reports_every_tile_and_scale_and_cancels() {
    // SAFETY: the first thing this test binary's only test does; no other thread exists yet.
    unsafe { varsr::init_process(varsr::Workload::Inference) };
    if varsr::ops::cpu::auto_lanes() < 2 {
        eprintln!("one core: tile lanes cannot run here, nothing to check");
        return;
    }
    let w = Worker::spawn(Arc::new(|| {}));
    w.send(Request::LoadModel {
        spec: ModelSpec::Path(fixture_model()),
        device: DeviceChoice::Cpu,
    });
    collect(&w, |e| matches!(e, Event::ModelLoaded(_)));

    // 200×150 → 800×600: 2×2 tiles of 512 px, two batches of two, one per lane.
    upscale(&w, 1, CancelFlag::new());
    let events = collect(&w, |e| {
        matches!(e, Event::Finished { .. } | Event::Failed { .. })
    });
    let mut done = Vec::new();
    let mut first_tiles = Vec::new();
    for e in &events {
        match e {
            Event::ScaleDone {
                tile,
                num_tiles,
                scale,
                ..
            } => {
                assert_eq!(*num_tiles, 4);
                done.push((*tile, *scale));
            }
            // Counted once both batches are under way: which lane reports first is a race.
            Event::Progress { tile, stage, .. }
                if *stage != Stage::Decoding
                    && done.iter().any(|(t, _)| *t == 0)
                    && done.iter().any(|(t, _)| *t == 2) =>
            {
                first_tiles.push(*tile)
            }
            _ => {}
        }
    }
    // Both batches reported all ten scales, interleaved: the lanes ran at once.
    let mut sorted = done.clone();
    sorted.sort();
    let expect: Vec<_> = [0, 2]
        .into_iter()
        .flat_map(|t| (0..10).map(move |s| (t, s)))
        .collect();
    assert_eq!(sorted, expect, "{done:?}");
    assert_ne!(
        done, expect,
        "the batches ran one after the other: {done:?}"
    );
    // The progress line follows the first batch under way: once both are, it never goes back.
    assert!(!first_tiles.is_empty());
    assert!(
        first_tiles.windows(2).all(|w| w[0] <= w[1]),
        "{first_tiles:?}"
    );
    match events.last() {
        Some(Event::Finished { image, .. }) => assert_eq!(image.dimensions(), (800, 600)),
        other => panic!("{other:?}"),
    }

    // Cancelled after the first scale: both lanes stop at a scale boundary, the finished part
    // is kept.
    let cancel = CancelFlag::new();
    upscale(&w, 2, cancel.clone());
    collect(&w, |e| matches!(e, Event::ScaleDone { job: 2, .. }));
    cancel.cancel();
    let rest = collect(&w, |e| {
        matches!(
            e,
            Event::Cancelled { .. } | Event::Finished { .. } | Event::Failed { .. }
        )
    });
    let scales = rest
        .iter()
        .filter(|e| matches!(e, Event::ScaleDone { .. }))
        .count();
    assert!(scales < 19, "{scales} more scales after the cancel");
    match rest.last() {
        Some(Event::Cancelled {
            job: 2, partial, ..
        }) => {
            assert!(partial.is_some(), "the finished scales are kept")
        }
        other => panic!("{other:?}"),
    }
    assert!(w.is_alive());
}
