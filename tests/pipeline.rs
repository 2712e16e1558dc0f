//! The scale loop's contract with its callers, on the parity fixture's model (real weights, random
//! values): events per scale, previews, cancellation at scale and refiner-step boundaries, determinism,
//! and "re-run from scale k" keeping the coarse tokens.

use std::path::Path;

use candle_core::{Device, Tensor};
use varsr::pipeline::engine::ModelSpec;
use varsr::pipeline::events::{Progress, ScaleEvent};
use varsr::pipeline::{Engine, Error, Noise, Observer, SamplingParams, SeededNoise};

fn engine() -> Engine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity/parity-d2");
    Engine::load(&ModelSpec::Path(dir), &Device::Cpu).unwrap()
}

fn input(engine: &Engine, seed: u64) -> Tensor {
    let side = engine.tile_px();
    let v = SeededNoise::new(seed)
        .uniform(3 * side * side)
        .into_iter()
        .map(|u| u * 2.0 - 1.0)
        .collect();
    Tensor::from_vec(v, (1, 3, side, side), &Device::Cpu).unwrap()
}

#[derive(Default)]
struct Recorder {
    scales: Vec<ScaleEvent>,
    refiner_steps: usize,
    cancel_after_scales: Option<usize>,
    cancel_after_refiner_steps: Option<usize>,
    previews: bool,
}

impl Observer for Recorder {
    fn scale_done(&mut self, e: &ScaleEvent) {
        self.scales.push(e.clone());
    }
    fn progress(&mut self, p: &Progress) {
        if let Progress::Refiner { .. } = p {
            self.refiner_steps += 1;
        }
    }
    fn cancelled(&self) -> bool {
        self.cancel_after_scales
            .is_some_and(|n| self.scales.len() >= n)
            || self
                .cancel_after_refiner_steps
                .is_some_and(|n| self.refiner_steps >= n)
    }
    fn wants_previews(&self) -> bool {
        self.previews
    }
}

#[test]
fn contract_of_the_scale_loop() {
    let engine = engine();
    let lr = input(&engine, 1);
    let pns = engine.patch_nums().to_vec();
    let sampled = SamplingParams {
        cfg: 3.0,
        top_k: 50,
        top_p: 0.9,
        seed: 7,
    };

    // Every scale reports its tokens and a preview of the right size; the refiner reports 10 steps.
    let mut rec = Recorder {
        previews: true,
        ..Default::default()
    };
    let a = engine
        .generate(
            &lr,
            &sampled,
            &[],
            &mut SeededNoise::new(7),
            &mut rec,
            (0, 1),
        )
        .unwrap();
    assert_eq!(rec.scales.len(), pns.len());
    assert_eq!(rec.refiner_steps, 10);
    for (e, &pn) in rec.scales.iter().zip(&pns) {
        assert_eq!((e.pn, e.num_scales), (pn, pns.len()));
        assert_eq!(e.tokens.len(), 1);
        assert_eq!(e.tokens[0].len(), pn * pn);
        assert!(
            e.tokens[0]
                .iter()
                .all(|&t| (t as usize) < engine.var.config.vocab_size)
        );
        let p = &e.previews[0];
        assert_eq!(p.rgb.len(), p.width * p.height * 3);
        assert_eq!(p.width, engine.latent_side());
    }
    let last_tokens: Vec<u32> = rec.scales.last().unwrap().tokens[0].clone();
    assert_eq!(
        a.tokens
            .last()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<u32>()
            .unwrap(),
        last_tokens
    );

    // Same seed and settings: the same bits. Another seed: other tokens (top-k 50 samples).
    let b = engine
        .generate(
            &lr,
            &sampled,
            &[],
            &mut SeededNoise::new(7),
            &mut Recorder::default(),
            (0, 1),
        )
        .unwrap();
    let bits = |t: &Tensor| {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&a.f_hat), bits(&b.f_hat));
    let c = engine
        .generate(
            &lr,
            &sampled,
            &[],
            &mut SeededNoise::new(8),
            &mut Recorder::default(),
            (0, 1),
        )
        .unwrap();
    assert_ne!(bits(&a.f_hat), bits(&c.f_hat));

    // Re-run from scale 5 with another seed keeps scales 0..5 and may change the rest.
    let locked: Vec<Tensor> = a.tokens[..5].to_vec();
    let d = engine
        .generate(
            &lr,
            &sampled,
            &locked,
            &mut SeededNoise::new(99),
            &mut Recorder::default(),
            (0, 1),
        )
        .unwrap();
    for si in 0..5 {
        assert_eq!(
            d.tokens[si]
                .flatten_all()
                .unwrap()
                .to_vec1::<u32>()
                .unwrap(),
            a.tokens[si]
                .flatten_all()
                .unwrap()
                .to_vec1::<u32>()
                .unwrap()
        );
    }
    let changed = (5..pns.len()).any(|si| {
        d.tokens[si]
            .flatten_all()
            .unwrap()
            .to_vec1::<u32>()
            .unwrap()
            != a.tokens[si]
                .flatten_all()
                .unwrap()
                .to_vec1::<u32>()
                .unwrap()
    });
    assert!(changed, "a new seed for the fine scales changed nothing");

    // Cancellation between scales keeps the finished scales reported.
    let mut rec = Recorder {
        cancel_after_scales: Some(4),
        ..Default::default()
    };
    let r = engine.generate(
        &lr,
        &sampled,
        &[],
        &mut SeededNoise::new(7),
        &mut rec,
        (0, 1),
    );
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(rec.scales.len(), 4);
    // ... and between refiner steps.
    let mut rec = Recorder {
        cancel_after_refiner_steps: Some(3),
        ..Default::default()
    };
    let r = engine.generate(
        &lr,
        &sampled,
        &[],
        &mut SeededNoise::new(7),
        &mut rec,
        (0, 1),
    );
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(rec.refiner_steps, 3);
}

#[test]
fn guidance_changes_the_result() {
    let engine = engine();
    let lr = input(&engine, 2);
    let run = |cfg: f32| {
        let p = SamplingParams {
            cfg,
            ..Default::default()
        };
        let g = engine
            .generate(
                &lr,
                &p,
                &[],
                &mut SeededNoise::new(1),
                &mut Recorder::default(),
                (0, 1),
            )
            .unwrap();
        g.tokens
            .iter()
            .map(|t| t.flatten_all().unwrap().to_vec1::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    let (t0, t6) = (run(0.0), run(6.0));
    // Scale 0 has no guidance (t = cfg·0/9); later scales must react to it.
    assert_eq!(t0[0], t6[0]);
    assert_ne!(t0[9], t6[9]);
}

#[test]
fn wrong_input_size_is_a_clear_error() {
    let engine = engine();
    let lr = Tensor::zeros((1, 3, 64, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    let r = engine.generate(
        &lr,
        &SamplingParams::default(),
        &[],
        &mut SeededNoise::new(0),
        &mut Recorder::default(),
        (0, 1),
    );
    match r {
        Err(Error::Invalid(m)) => assert!(m.contains("512") && m.contains("64"), "{m}"),
        other => panic!("expected an input-size error, got {:?}", other.map(|_| ())),
    }
}
