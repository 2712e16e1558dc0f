//! Parity with the published VARSR inference: every fixture directory under `tests/fixtures/parity/`
//! (layout of the fixtures README: `VARSR.pth`, `VQVAE.pth`, `config.json`, `reference.safetensors`, made by
//! running the published code) is run through our pipeline with the recorded refiner noise replayed.
//!
//! Run with `cargo test --release --test parity`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use varsr::pipeline::engine::ModelSpec;
use varsr::pipeline::{Engine, Noise, Observer, SamplingParams};

/// Replays the refiner's recorded draws: the initial noise, then one draw per step except the last
/// (which the reference multiplies by zero). Only the guided half of each draw is ever used.
struct Replay {
    draws: VecDeque<Vec<f32>>,
}

impl Noise for Replay {
    fn normal(&mut self, n: usize) -> Vec<f32> {
        let d = self
            .draws
            .pop_front()
            .expect("the pipeline asked for more noise than the fixture recorded");
        assert!(
            d.len() >= n,
            "recorded draw has {} values, {n} requested",
            d.len()
        );
        d[..n].to_vec()
    }
    fn uniform(&mut self, _n: usize) -> Vec<f32> {
        panic!("top_k = 1 must not draw uniforms")
    }
}

#[derive(Default)]
struct Taps(HashMap<String, Tensor>);

impl Observer for Taps {
    fn tap(&mut self, name: &str, value: &Tensor) {
        self.0.insert(name.to_string(), value.clone());
    }
    fn wants_taps(&self) -> bool {
        true
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a = a.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures/parity exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("reference.safetensors").is_file() && p.join("config.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn check_fixture(dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let dev = Device::Cpu;
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let reference =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &dev).unwrap();
    let get = |k: &str| {
        reference
            .get(k)
            .unwrap_or_else(|| panic!("{name}: reference lacks `{k}`"))
            .clone()
    };

    let engine = Engine::load(&ModelSpec::Path(dir.to_path_buf()), &dev).unwrap();
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

    let lr = get("lr_input");
    let b = lr.dims()[0];
    assert_eq!(b as u64, cfg["batch"].as_u64().unwrap_or(1));

    // The LR encoder alone.
    let prefix = engine.var.con_embedding.forward(&lr).unwrap();
    let want = get("prefix_tokens");
    let (_, c, h, w) = want.dims4().unwrap();
    let want = want
        .reshape((b, c, h * w))
        .unwrap()
        .transpose(1, 2)
        .unwrap();
    let d = max_abs_diff(&prefix, &want);
    assert!(d < 1e-4, "{name}: prefix tokens differ by {d}");

    let params = SamplingParams {
        cfg: cfg["cfg"].as_f64().unwrap() as f32,
        top_k: cfg["top_k"].as_u64().unwrap() as usize,
        top_p: cfg["top_p"].as_f64().unwrap() as f32,
        seed: 0,
    };
    let mut draws = VecDeque::new();
    draws.push_back(
        get("refiner_noise_init")
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
    );
    for i in 0..9 {
        draws.push_back(
            get(&format!("refiner_noise_step{i}"))
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
        );
    }
    let mut noise = Replay { draws };
    let mut taps = Taps::default();
    let out = engine
        .generate(&lr, &params, &[], &mut noise, &mut taps, (0, 1))
        .unwrap();

    let k = patch_nums.len();
    for si in 0..k {
        let want = get(&format!("tokens_s{si}")).to_dtype(DType::I64).unwrap();
        let got = out.tokens[si].to_dtype(DType::I64).unwrap();
        let same = want.flatten_all().unwrap().to_vec1::<i64>().unwrap()
            == got.flatten_all().unwrap().to_vec1::<i64>().unwrap();
        assert!(same, "{name}: tokens differ first at scale {si}");
    }
    let (mut worst_logit, mut worst_latent) = (0f32, 0f32);
    for si in 0..k {
        let key = format!("guided_logits_s{si}");
        if let Some(want) = reference.get(&key) {
            let d = max_abs_diff(&taps.0[&key], want);
            worst_logit = worst_logit.max(d);
            assert!(d < 1e-4, "{name}: {key} differs by {d}");
        }
        let key = format!("f_hat_after_s{si}");
        let d = max_abs_diff(&taps.0[&key], &get(&key));
        worst_latent = worst_latent.max(d);
        assert!(d < 1e-4, "{name}: {key} differs by {d}");
    }
    let d_cond = max_abs_diff(&taps.0["refiner_cond"], &get("refiner_cond"));
    let d = d_cond;
    assert!(d < 1e-4, "{name}: refiner condition differs by {d}");
    let want = get("refiner_out");
    let n = taps.0["refiner_out"].dims()[0];
    let d_ref = max_abs_diff(&taps.0["refiner_out"], &want.i(0..n).unwrap());
    let d = d_ref;
    assert!(d < 1e-4, "{name}: refiner output differs by {d}");
    assert!(
        noise.draws.is_empty(),
        "{name}: {} recorded draws unused",
        noise.draws.len()
    );

    let img = engine.decode(&out.f_hat).unwrap();
    let d = max_abs_diff(&img, &get("output_image"));
    assert!(d < 1e-3, "{name}: decoded image differs by {d}");
    eprintln!(
        "{name}: parity ok (batch {b}, {k} scales): tokens identical; max |Δ| logits {worst_logit:.2e}, \
         latents {worst_latent:.2e}, refiner condition {d_cond:.2e}, refiner output {d_ref:.2e}, image {d:.2e}"
    );
}

/// A batch of two (the fixture's input and its mirror image) gives the fixture's result for its first
/// item: batch items must not leak into each other (the tiled path batches rows of tiles).
fn check_batch_independence(dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let dev = Device::Cpu;
    let reference =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &dev).unwrap();
    let lr = reference["lr_input"].clone();
    if lr.dims()[0] != 1 {
        return;
    }
    let engine = Engine::load(&ModelSpec::Path(dir.to_path_buf()), &dev).unwrap();
    let mirrored = lr.flip(&[3]).unwrap();
    let batch = Tensor::cat(&[&lr, &mirrored], 0).unwrap();
    let first = |k: &str| {
        reference[k]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let mut draws = VecDeque::new();
    // Rows of a draw are ordered batch item by batch item; the second item gets its own values.
    let with_second = |mut v: Vec<f32>, len: usize| {
        v.truncate(len);
        v.extend(v.clone().iter().map(|x| -x));
        v
    };
    let per_item = first("refiner_noise_init").len();
    draws.push_back(with_second(first("refiner_noise_init"), per_item));
    for i in 0..9 {
        draws.push_back(with_second(
            first(&format!("refiner_noise_step{i}")),
            per_item,
        ));
    }
    let params = SamplingParams {
        cfg: 6.0,
        top_k: 1,
        top_p: 0.75,
        seed: 0,
    };
    let out = engine
        .generate(
            &batch,
            &params,
            &[],
            &mut Replay { draws },
            &mut Taps::default(),
            (0, 1),
        )
        .unwrap();
    for si in 0..out.tokens.len() {
        let got = out.tokens[si]
            .i(0)
            .unwrap()
            .to_dtype(DType::I64)
            .unwrap()
            .to_vec1::<i64>()
            .unwrap();
        let want = reference[&format!("tokens_s{si}")]
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
    let d = max_abs_diff(&img, &reference["output_image"]);
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
