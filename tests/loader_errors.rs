//! The weight loader (src/weights) against independent truth: the real parity checkpoints read by a
//! separate zipfile+pickle+numpy reader (tests/fixtures/gen/gen_loader_fixtures.py), hand-made torch-format
//! files with known values, and damaged files whose errors must be specific.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use varsr::weights::{
    self, Component, ModelFiles, VAE_STATE_DICT, VAR_STATE_DICT, Weights, WeightsError,
    is_inference_key, open_model_files,
};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn parity(name: &str) -> PathBuf {
    fixture(&format!("parity/parity-d2/{name}"))
}

fn loader(name: &str) -> PathBuf {
    fixture(&format!("loader/{name}"))
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("fixture json");
    serde_json::from_str(&text).expect("valid json")
}

fn open_var() -> Weights {
    Weights::open_pth(&parity("VARSR.pth"), VAR_STATE_DICT).expect("open VARSR.pth")
}

fn open_vae() -> Weights {
    Weights::open_pth(&parity("VQVAE.pth"), VAE_STATE_DICT).expect("open VQVAE.pth")
}

fn dtype_tag(dt: DType) -> &'static str {
    match dt {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F64 => "f64",
        DType::I64 => "i64",
        DType::U8 => "u8",
        DType::U32 => "u32",
        _ => "other",
    }
}

/// Raw little-endian bytes of a tensor in its own dtype, row-major.
fn raw_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.flatten_all().expect("flatten");
    match t.dtype() {
        DType::F32 => t
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::F16 => t
            .to_vec1::<half::f16>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::BF16 => t
            .to_vec1::<half::bf16>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::F64 => t
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::I64 => t
            .to_vec1::<i64>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::U8 => t.to_vec1::<u8>().unwrap(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

fn values_f64(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

fn shape_of(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn err_text<T: std::fmt::Debug>(r: Result<T, WeightsError>) -> String {
    r.expect_err("expected an error").to_string()
}

// ------------------------------------------------------------------ the real parity checkpoints

#[test]
fn parity_checkpoints_match_an_independent_reader() {
    let reference = json(&loader("parity_d2_values.json"));
    for (file, w) in [("VARSR.pth", open_var()), ("VQVAE.pth", open_vae())] {
        let expected = reference[file].as_object().unwrap();
        let keys: Vec<&str> = w.keys().collect();
        assert_eq!(keys.len(), expected.len(), "{file}: number of tensors");
        for key in &keys {
            assert!(expected.contains_key(*key), "{file}: unexpected key {key}");
        }
        for (key, want) in expected {
            assert_eq!(w.shape(key), Some(shape_of(want)), "{file} {key}: shape");
            let dt = w.dtype(key).unwrap();
            assert_eq!(
                dtype_tag(dt),
                want["dtype"].as_str().unwrap(),
                "{file} {key}: dtype"
            );
            let t = w.tensor(key, &Device::Cpu).unwrap();
            assert_eq!(t.dtype(), dt);
            assert_eq!(t.dims(), shape_of(want).as_slice());
            let hash = format!("{:016x}", fnv1a64(&raw_bytes(&t)));
            assert_eq!(
                hash,
                want["fnv1a64"].as_str().unwrap(),
                "{file} {key}: bytes differ"
            );
            let vals = values_f64(&t);
            for s in want["samples"].as_array().unwrap() {
                let i = s[0].as_u64().unwrap() as usize;
                // serde_json's default float parsing may be 1 ulp off in f64; the values are f32/i64.
                let want = s[1].as_f64().unwrap();
                assert_eq!(vals[i] as f32, want as f32, "{file} {key}[{i}]");
            }
            let sum: f64 = vals.iter().sum();
            let want_sum = want["sum"].as_f64().unwrap();
            assert!(
                (sum - want_sum).abs() <= 1e-9 * (1.0 + want_sum.abs()),
                "{file} {key}: sum"
            );
        }
    }
}

#[test]
fn var_builder_names_are_state_dict_keys_and_shapes_are_checked() {
    let var = open_var();
    let vb = var.var_builder(DType::F32, &Device::Cpu);
    let c = var.shape("word_embed.weight").unwrap()[0];
    let proj = vb.pp("blocks").pp(0).pp("attn").pp("proj");
    let w = proj.get((c, c), "weight").unwrap();
    assert_eq!(w.dims(), &[c, c]);
    let direct = var
        .tensor("blocks.0.attn.proj.weight", &Device::Cpu)
        .unwrap();
    assert_eq!(raw_bytes(&w), raw_bytes(&direct));

    let err = proj.get((c / 2, c), "weight").unwrap_err().to_string();
    let file = parity("VARSR.pth").display().to_string();
    assert!(
        err.contains(&format!("tensor `blocks.0.attn.proj.weight` in {file}")),
        "names key and file: {err}"
    );
    assert!(
        err.contains(&format!(
            "has shape [{c}, {c}], the model expects [{}, {c}]",
            c / 2
        )),
        "{err}"
    );

    let err = vb
        .pp("blocks")
        .pp(7)
        .pp("attn")
        .get((c, c), "weight")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor `blocks.7.attn.weight` not found in"),
        "{err}"
    );
    assert!(
        err.contains("VARSR.pth") && err.contains("trainer.var_wo_ddp"),
        "{err}"
    );

    // int64 buffers come through in their own dtype when asked for
    let lvl = vb.get_with_hints_dtype(
        var.shape("lvl_1L").unwrap(),
        "lvl_1L",
        Default::default(),
        DType::I64,
    );
    assert_eq!(lvl.unwrap().dtype(), DType::I64);
    assert!(vb.contains_tensor("head.weight"));
    assert!(!vb.contains_tensor("head.nonexistent"));
}

#[test]
fn only_requested_tensors_are_read() {
    let var = open_var();
    let n_keys = var.keys().count();
    for key in var.keys() {
        assert!(var.shape(key).is_some());
    }
    let vb = var.var_builder(DType::F32, &Device::Cpu);
    assert!(vb.contains_tensor("pos_start"));
    assert_eq!(
        var.bytes_read(),
        0,
        "index queries over {n_keys} keys read no tensor data"
    );

    let t = var.tensor("pos_start", &Device::Cpu).unwrap();
    assert_eq!(var.bytes_read() as usize, t.elem_count() * 4);
    let head = var.tensor("head.weight", &Device::Cpu).unwrap();
    assert_eq!(
        var.bytes_read() as usize,
        (t.elem_count() + head.elem_count()) * 4
    );
}

// ------------------------------------------------------------------ hand-made torch-format files

#[test]
fn torch_format_values_dtypes_views_and_training_clutter() {
    let expected = json(&loader("fake_release.json"));
    let w = Weights::open_pth(&loader("fake_release.pth"), VAR_STATE_DICT).unwrap();
    let vae = Weights::open_pth(&loader("fake_release.pth"), VAE_STATE_DICT).unwrap();
    for (name, want) in expected["tensors"].as_object().unwrap() {
        let (w, key) = match name.strip_prefix("_vae_") {
            Some(k) => (&vae, k),
            None => (&w, name.as_str()),
        };
        let t = w
            .tensor(key, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(t.dims(), shape_of(want).as_slice(), "{key}");
        assert_eq!(
            dtype_tag(t.dtype()),
            want["dtype"].as_str().unwrap(),
            "{key}"
        );
        let want_vals = want["values"].as_array().unwrap();
        if t.dtype() == DType::I64 {
            let got = t.flatten_all().unwrap().to_vec1::<i64>().unwrap();
            let want: Vec<i64> = want_vals.iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(got, want, "{key}");
        } else {
            let want: Vec<f64> = want_vals.iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(values_f64(&t), want, "{key}");
        }
    }
    // keys come in the saved order (candle's pickle VM reverses SETITEMS batches; the loader undoes it)
    let keys: Vec<&str> = w.keys().collect();
    let order: Vec<&str> = expected["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(keys, order);
    // unreadable entries are listed, and fail only when asked for, with the reason
    assert!(keys.contains(&"mask_bool") && keys.contains(&"corrupt_unrequested"));
    assert_eq!(w.shape("mask_bool"), Some(vec![3]));
    let err = err_text(w.tensor("mask_bool", &Device::Cpu));
    assert!(
        err.contains("`mask_bool`") && err.contains("BoolStorage"),
        "{err}"
    );
    let err = err_text(w.tensor("corrupt_unrequested", &Device::Cpu));
    assert!(
        err.contains("`corrupt_unrequested`") && err.contains("holds 8 bytes"),
        "{err}"
    );
    // `_metadata` of the OrderedDict is not a tensor
    assert!(!w.contains("_metadata"));
}

#[test]
fn missing_dict_keys_are_named_with_what_is_there() {
    let err = err_text(Weights::open_pth(&loader("no_trainer.pth"), VAR_STATE_DICT));
    assert!(err.contains("no key `trainer`"), "{err}");
    for k in ["`epoch`", "`iter`", "`model`", "`3`"] {
        assert!(err.contains(k), "lists {k}: {err}");
    }
    let err = err_text(Weights::open_pth(
        &loader("no_var_wo_ddp.pth"),
        VAR_STATE_DICT,
    ));
    assert!(err.contains("`trainer` has no key `var_wo_ddp`"), "{err}");
    assert!(
        err.contains("`config`") && err.contains("`vae_local`"),
        "{err}"
    );
    // the VAE path of the same file works
    assert!(Weights::open_pth(&loader("no_var_wo_ddp.pth"), VAE_STATE_DICT).is_ok());
}

#[test]
fn not_a_checkpoint_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, "this is not a checkpoint at all").unwrap();
    let err = err_text(Weights::open_pth(&text, VAR_STATE_DICT));
    assert!(
        err.contains("notes.pth is not a PyTorch checkpoint"),
        "{err}"
    );

    let empty = dir.path().join("empty.pth");
    std::fs::write(&empty, "").unwrap();
    assert!(err_text(Weights::open_pth(&empty, VAR_STATE_DICT)).contains("empty"));

    let err = err_text(Weights::open_pth(
        &loader("no_data_pkl.pth"),
        VAR_STATE_DICT,
    ));
    assert!(
        err.contains("no data.pkl") && err.contains("archive/data/0"),
        "{err}"
    );

    let err = err_text(Weights::open_pth(&loader("legacy.pth"), VAR_STATE_DICT));
    assert!(err.contains("bare pickle"), "{err}");

    let err = err_text(Weights::open_pth(
        &parity("reference.safetensors"),
        VAR_STATE_DICT,
    ));
    assert!(err.contains("safetensors"), "{err}");

    let err = err_text(Weights::open_pth(
        &dir.path().join("absent.pth"),
        VAR_STATE_DICT,
    ));
    assert!(err.contains("absent.pth"), "{err}");

    let err = err_text(Weights::open_safetensors(&text));
    assert!(err.contains("notes.pth") && err.contains("not"), "{err}");
}

#[test]
fn truncated_checkpoints_are_reported_as_truncated() {
    let full = std::fs::read(parity("VQVAE.pth")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for len in [10, 4096, full.len() / 2, full.len() - 23, full.len() - 1] {
        let path = dir.path().join(format!("VQVAE-{len}.pth"));
        std::fs::write(&path, &full[..len]).unwrap();
        let err = err_text(Weights::open_pth(&path, VAE_STATE_DICT));
        assert!(
            err.contains(&format!("VQVAE-{len}.pth is truncated")),
            "cut at {len}: {err}"
        );
    }
}

#[test]
fn storage_running_past_the_end_of_file() {
    let w = Weights::open_pth(&loader("past_end.pth"), VAR_STATE_DICT).unwrap();
    let small = w.tensor("small", &Device::Cpu).unwrap();
    assert_eq!(small.to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
    let err = err_text(w.tensor("big", &Device::Cpu));
    assert!(err.contains("past_end.pth is truncated"), "{err}");
    assert!(
        err.contains("`big`") && err.contains("file ends at"),
        "{err}"
    );
}

#[test]
fn zip64_local_headers() {
    let w = Weights::open_pth(&loader("zip64.pth"), VAR_STATE_DICT).unwrap();
    let a = w
        .tensor("a", &Device::Cpu)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(a, vec![0.5, -1.5, 2.5]);
    let b = w
        .tensor("b", &Device::Cpu)
        .unwrap()
        .to_vec1::<i64>()
        .unwrap();
    assert_eq!(b, vec![-3, 1 << 33]);
}

#[test]
fn compressed_storage_fails_only_when_requested() {
    let w = Weights::open_pth(&loader("compressed.pth"), VAR_STATE_DICT).unwrap();
    assert_eq!(
        w.tensor("plain", &Device::Cpu)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        vec![5.0, 6.0]
    );
    let err = err_text(w.tensor("deflated", &Device::Cpu));
    assert!(
        err.contains("`deflated`") && err.contains("compressed"),
        "{err}"
    );
}

// ------------------------------------------------------------------ safetensors and conversion

#[test]
fn embedded_safetensors_bytes() {
    static TINY: &[u8] = include_bytes!("fixtures/loader/tiny.safetensors");
    let expected = json(&loader("tiny.json"));
    let w = Weights::from_static_safetensors(TINY, "embedded tiny").unwrap();
    let meta: HashMap<String, String> =
        serde_json::from_value(expected["metadata"].clone()).unwrap();
    assert_eq!(w.metadata(), &meta);
    for (name, want) in expected["tensors"].as_object().unwrap() {
        let t = w.tensor(name, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), shape_of(want).as_slice(), "{name}");
        assert_eq!(
            dtype_tag(t.dtype()),
            want["dtype"].as_str().unwrap(),
            "{name}"
        );
        if t.dtype() == DType::I64 {
            let want: Vec<i64> = want["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(t.flatten_all().unwrap().to_vec1::<i64>().unwrap(), want);
        } else {
            let want: Vec<f64> = want["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(values_f64(&t), want, "{name}");
        }
    }
    let files = ModelFiles::from_static(TINY, "embedded tiny").unwrap();
    assert_eq!(files.var().keys().collect::<Vec<_>>(), vec!["a", "c"]);
    assert_eq!(files.vae().keys().collect::<Vec<_>>(), vec!["b", "d"]);
    assert_eq!(files.vae().shape("d"), Some(vec![1, 2]));
    let err = err_text(files.var().tensor("b", &Device::Cpu));
    assert!(
        err.contains("tensor `var.b` not found in embedded tiny"),
        "{err}"
    );
}

fn converted_files(dir: &Path, dtype: DType) -> (PathBuf, weights::ConvertSummary) {
    let out = dir.join(format!("model-{dtype:?}.safetensors"));
    let mut meta = HashMap::new();
    meta.insert("varsr.config".to_string(), "{\"depth\":2}".to_string());
    let summary = weights::convert(
        &open_var(),
        &open_vae(),
        is_inference_key,
        &out,
        dtype,
        meta,
    )
    .unwrap();
    (out, summary)
}

#[test]
fn convert_f32_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (out, summary) = converted_files(dir.path(), DType::F32);
    assert!(summary.dropped.contains(&"var.lvl_1L".to_string()));
    assert!(
        summary
            .dropped
            .contains(&"var.blocks.1.attn.zero_k_bias".to_string())
    );
    assert!(
        summary
            .dropped
            .contains(&"vae.quantize.ema_vocab_hit_SV".to_string())
    );
    // only the final file is left in the folder
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let files = open_model_files(&out).unwrap();
    assert!(matches!(files, ModelFiles::Converted(_)));
    assert_eq!(
        files.metadata().get("varsr.config").map(String::as_str),
        Some("{\"depth\":2}")
    );
    let mut count = 0;
    for (component, src) in [(Component::Var, open_var()), (Component::Vae, open_vae())] {
        let dst = files.component(component);
        for key in src.keys() {
            if !is_inference_key(component, key) {
                assert!(!dst.contains(key), "{key} was dropped");
                continue;
            }
            count += 1;
            let a = src.tensor(key, &Device::Cpu).unwrap();
            let b = dst.tensor(key, &Device::Cpu).unwrap();
            assert_eq!(a.dims(), b.dims(), "{key}");
            assert_eq!(raw_bytes(&a), raw_bytes(&b), "{key}");
        }
    }
    assert_eq!(count, summary.tensors);
    let expected_len = std::fs::metadata(&out).unwrap().len();
    assert!(expected_len > summary.data_bytes);
}

#[test]
fn convert_half_precisions_round_within_half_an_ulp() {
    let dir = tempfile::tempdir().unwrap();
    // relative half-ulp for normal numbers; absolute floor covers f16 subnormals
    for (dtype, rel, abs) in [
        (DType::F16, 2f64.powi(-11), 2f64.powi(-25)),
        (DType::BF16, 2f64.powi(-8), 0.0),
    ] {
        let (out, _) = converted_files(dir.path(), dtype);
        let files = open_model_files(&out).unwrap();
        let src = open_var();
        let dst = files.var();
        for key in ["pos_start", "blocks.0.attn.mat_qkv.weight", "head.weight"] {
            let a = values_f64(&src.tensor(key, &Device::Cpu).unwrap());
            let t = dst.tensor(key, &Device::Cpu).unwrap();
            assert_eq!(t.dtype(), dtype);
            for (x, y) in a.iter().zip(values_f64(&t)) {
                assert!(
                    (x - y).abs() <= x.abs() * rel + abs,
                    "{key} {dtype:?}: {x} -> {y}"
                );
            }
        }
        // the VarBuilder casts back to f32 for the model
        let vb = files.var_builder(DType::F32, &Device::Cpu);
        let shape = dst.shape("head.weight").unwrap();
        assert_eq!(vb.get(shape, "head.weight").unwrap().dtype(), DType::F32);
    }
}

#[test]
fn failed_conversion_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let w = Weights::open_pth(&loader("fake_release.pth"), VAR_STATE_DICT).unwrap();
    let vae = Weights::open_pth(&loader("fake_release.pth"), VAE_STATE_DICT).unwrap();
    let out = dir.path().join("bad.safetensors");
    let err = err_text(weights::convert(
        &w,
        &vae,
        |_, _| true,
        &out,
        DType::F32,
        HashMap::new(),
    ));
    assert!(
        err.contains("mask_bool") || err.contains("corrupt_unrequested"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // without the unreadable ones it converts, and integers keep their dtype
    let keep = |_: Component, k: &str| k != "mask_bool" && k != "corrupt_unrequested";
    let summary = weights::convert(&w, &vae, keep, &out, DType::F16, HashMap::new()).unwrap();
    // 1e30 (bf16) and -1e200 (f64) do not fit in f16; 65504 (f16 max) does
    let mut overflowed = summary.overflowed.clone();
    overflowed.sort();
    assert_eq!(
        overflowed,
        vec![("var.b_bf16".to_string(), 1), ("var.d_f64".to_string(), 1)]
    );
    let back = Weights::open_safetensors(&out).unwrap();
    assert_eq!(back.dtype("var.lvl_1L"), Some(DType::I64));
    assert_eq!(back.dtype("var.w_t"), Some(DType::F16));
    assert_eq!(back.dtype("var.u_u8"), Some(DType::U8));
    let t = back.tensor("var.w_t", &Device::Cpu).unwrap();
    assert_eq!(values_f64(&t), vec![-0.75, 0.0, -0.5, 0.25, -0.25, 0.5]);
}

#[test]
fn truncated_safetensors_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = converted_files(dir.path(), DType::F16);
    let bytes = std::fs::read(&out).unwrap();
    for len in [4, 100, bytes.len() / 2, bytes.len() - 1] {
        let cut = dir.path().join(format!("cut-{len}.safetensors"));
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let err = err_text(Weights::open_safetensors(&cut));
        let ok =
            err.contains("is truncated") || (len < 8 && err.contains("not a PyTorch checkpoint"));
        assert!(ok, "cut at {len}: {err}");
    }
}

// ------------------------------------------------------------------ model folders

#[test]
fn model_folder_forms_and_their_errors() {
    let files = open_model_files(&parity("")).unwrap();
    assert!(matches!(files, ModelFiles::Released { .. }));
    assert!(files.var().shape("head.weight").is_some());
    assert!(files.vae().shape("quantize.embedding.weight").is_some());
    assert!(files.metadata().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let err = err_text(open_model_files(dir.path()));
    assert!(
        err.contains("VARSR.pth") && err.contains("VQVAE.pth") && err.contains("empty"),
        "{err}"
    );

    std::fs::copy(parity("VARSR.pth"), dir.path().join("VARSR.pth")).unwrap();
    let err = err_text(open_model_files(dir.path()));
    assert!(err.contains("found VARSR.pth but not VQVAE.pth"), "{err}");

    let err = err_text(open_model_files(&dir.path().join("VARSR.pth")));
    assert!(err.contains("VQVAE.pth"), "{err}");

    let err = err_text(open_model_files(&dir.path().join("nowhere")));
    assert!(err.contains("nowhere") && err.contains("no such"), "{err}");

    // a safetensors file without var./vae. prefixes is not a converted model
    let err = err_text(open_model_files(&parity("reference.safetensors")));
    assert!(err.contains("no `var.` tensors"), "{err}");
}
