//! Parity with the published VARSR inference: every fixture directory under `tests/fixtures/parity/`
//! (layout of the fixtures README: `VARSR.pth`, `VQVAE.pth`, `config.json`, `reference.safetensors`, made by
//! running the published code) is run through our pipeline with the recorded refiner noise replayed.
//! Loading, replaying and measuring are `varsr::pipeline::fixture` (shared with `varsr parity`); the
//! tolerances are this test's.
//!
//! Run with `cargo test --release --test parity`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use varsr::pipeline::engine::ModelSpec;
use varsr::pipeline::fixture::{self, Comparison, Fixture, Replay, Taps, max_abs_diff};
use varsr::pipeline::{Engine, SamplingParams};

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity");
    fixture::find(&[root]).unwrap_or_default()
}

fn check_fixture(dir: &Path) {
    let fx = Fixture::load(dir).unwrap();
    let name = fx.name.clone();
    let cfg = &fx.config;
    let engine = Engine::load(&ModelSpec::Path(dir.to_path_buf()), &Device::Cpu).unwrap();
    let vc = &engine.var.config;
    assert_eq!(
        vc.depth as u64,
        cfg["depth"].as_u64().unwrap(),
        "{name}: depth read from shapes"
    );
    assert_eq!(
        vc.embed_dim as u64,
        cfg["embed_dim"].as_u64().unwrap(),
        "{name}: width read from shapes"
    );
    let patch_nums: Vec<usize> = cfg["patch_nums"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(vc.patch_nums, patch_nums);
    assert!(fx.config_mismatches(&engine).is_empty());

    let b = fx.get("lr_input").unwrap().dims()[0];
    assert_eq!(b as u64, cfg["batch"].as_u64().unwrap_or(1));

    let run = fx.run(&engine).unwrap();
    let cmp = Comparison::new(&fx, &run, &patch_nums).unwrap();

    // The LR encoder alone.
    let d = cmp.prefix;
    assert!(d < 1e-4, "{name}: prefix tokens differ by {d}");

    let k = patch_nums.len();
    assert_eq!(cmp.scales.len(), k);
    for s in &cmp.scales {
        assert!(
            s.all_identical(),
            "{name}: tokens differ first at scale {}",
            s.scale
        );
    }
    for s in &cmp.scales {
        if let Some(d) = s.logits {
            assert!(
                d < 1e-4,
                "{name}: guided_logits_s{} differs by {d}",
                s.scale
            );
        }
        let d = s.latent;
        assert!(d < 1e-4, "{name}: f_hat_after_s{} differs by {d}", s.scale);
    }
    let (worst_logit, worst_latent) = (cmp.worst_logits(), cmp.worst_latent());
    let d_cond = cmp.refiner_cond;
    let d = d_cond;
    assert!(d < 1e-4, "{name}: refiner condition differs by {d}");
    let d_ref = cmp.refiner_out;
    let d = d_ref;
    assert!(d < 1e-4, "{name}: refiner output differs by {d}");
    assert!(
        run.unused_draws == 0,
        "{name}: {} recorded draws unused",
        run.unused_draws
    );

    let d = cmp.image;
    assert!(d < 1e-3, "{name}: decoded image differs by {d}");
    eprintln!(
        "{name}: parity ok (batch {b}, {k} scales): tokens identical; max |Δ| logits {worst_logit:.2e}, \
         latents {worst_latent:.2e}, refiner condition {d_cond:.2e}, refiner output {d_ref:.2e}, image {d:.2e}"
    );
}

/// A batch of two (the fixture's input and its mirror image) gives the fixture's result for its first
/// item: batch items must not leak into each other (the tiled path batches rows of tiles).
fn check_batch_independence(dir: &Path) {
    let fx = Fixture::load(dir).unwrap();
    let name = fx.name.clone();
    let lr = fx.get("lr_input").unwrap().clone();
    if lr.dims()[0] != 1 {
        return;
    }
    let engine = Engine::load(&ModelSpec::Path(dir.to_path_buf()), &Device::Cpu).unwrap();
    let mirrored = lr.flip(&[3]).unwrap();
    let batch = Tensor::cat(&[&lr, &mirrored], 0).unwrap();
    let recorded = fx.noise_draws().unwrap();
    // Rows of a draw are ordered batch item by batch item; the second item gets its own values.
    let per_item = recorded[0].len();
    let draws = recorded
        .into_iter()
        .map(|mut v| {
            v.truncate(per_item);
            v.extend(v.clone().iter().map(|x| -x));
            v
        })
        .collect();
    let params = SamplingParams {
        cfg: 6.0,
        top_k: 1,
        top_p: 0.75,
        seed: 0,
    };
    let mut noise = Replay::new(draws);
    let out = engine
        .generate(
            &batch,
            &params,
            &[],
            &mut noise,
            &mut Taps::default(),
            (0, 1),
        )
        .unwrap();
    assert!(noise.problem().is_none(), "{name}: {:?}", noise.problem());
    for si in 0..out.tokens.len() {
        let got = out.tokens[si]
            .i(0)
            .unwrap()
            .to_dtype(DType::I64)
            .unwrap()
            .to_vec1::<i64>()
            .unwrap();
        let want = fx
            .get(&format!("tokens_s{si}"))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_dtype(DType::I64)
            .unwrap();
        assert_eq!(
            got,
            want.to_vec1::<i64>().unwrap(),
            "{name}: batched tokens differ at scale {si}"
        );
    }
    let img = engine.decode(&out.f_hat.i(0..1).unwrap()).unwrap();
    let d = max_abs_diff(&img, fx.get("output_image").unwrap()).unwrap();
    assert!(d < 1e-3, "{name}: batched image differs by {d}");
}

#[test]
fn a_batch_of_two_reproduces_each_fixture_for_its_first_item() {
    for dir in fixture_dirs() {
        check_batch_independence(&dir);
    }
}

#[test]
fn every_fixture_matches_the_published_inference() {
    let dirs = fixture_dirs();
    assert!(
        !dirs.is_empty(),
        "no parity fixtures found under tests/fixtures/parity"
    );
    for dir in dirs {
        check_fixture(&dir);
    }
}
