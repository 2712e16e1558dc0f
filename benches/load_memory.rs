//! Peak memory of loading weights, against the bytes of the tensors requested.
//!
//! `cargo bench --bench load_memory` writes a synthetic checkpoint shaped like the released `VARSR.pth`
//! (nested `trainer.var_wo_ddp` state dict, a training-only mask buffer, and AdamW moments twice the size
//! of the weights, zip64 entries) to a temp folder, then measures, each in a fresh child process so that
//! peaks do not mix:
//!   1. loading every inference tensor from the `.pth` (what the model does), tensors kept alive;
//!   2. converting it to one f16 safetensors file;
//!   3. loading that safetensors file (memory-mapped).
//!
//! Peak RSS is VmHWM from /proc/self/status (Linux). `VARSR_BENCH_MB` sets the weight size (default 256).
//! `cargo bench --bench load_memory -- /path/VARSR.pth` measures step 1 on a real checkpoint instead.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device};
use varsr::weights::{self, Component, VAE_STATE_DICT, VAR_STATE_DICT, Weights, is_inference_key};

fn main() {
    // SAFETY: no other thread exists yet.
    unsafe { varsr::init_process(varsr::Workload::Inference) };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("--child-load-pth") => child_load_pth(Path::new(&args[1])),
        Some("--child-convert") => child_convert(Path::new(&args[1]), Path::new(&args[2])),
        Some("--child-load-st") => child_load_st(Path::new(&args[1])),
        Some(path) => {
            println!("real checkpoint {path}");
            run_child(&["--child-load-pth", path]);
        }
        None => synthetic(),
    }
}

fn synthetic() {
    let mb: usize = std::env::var("VARSR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile_dir();
    let pth = dir.join("VARSR.pth");
    let t0 = std::time::Instant::now();
    let sizes = write_synthetic(&pth, mb).expect("write synthetic checkpoint");
    println!(
        "synthetic checkpoint: {:.0} MB weights, {:.0} MB file, written in {:.1}s",
        sizes.0 as f64 / 1e6,
        sizes.1 as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let st = dir.join("converted.safetensors");
    let pth_s = pth.display().to_string();
    let st_s = st.display().to_string();
    run_child(&["--child-load-pth", &pth_s]);
    run_child(&["--child-convert", &pth_s, &st_s]);
    run_child(&["--child-load-st", &st_s]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("varsr-load-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run_child(args: &[&str]) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe).args(args).output().expect("spawn child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child {args:?} failed");
}

/// (VmHWM, VmRSS) in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn report(what: &str, requested: u64, base: u64) {
    let (hwm, now) = rss();
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{what}: requested {:.1} MB; peak RSS {:.1} MB (process baseline {:.1} MB, now {:.1} MB); \
         (peak - baseline) / requested = {:.3}",
        mb(requested),
        mb(hwm),
        mb(base),
        mb(now),
        (hwm.saturating_sub(base)) as f64 / requested.max(1) as f64
    );
}

fn tensor_bytes(w: &Weights, key: &str) -> u64 {
    let n: usize = w.shape(key).map_or(0, |s| s.iter().product());
    (n * w.dtype(key).map_or(0, |d| d.size_in_bytes())) as u64
}

fn child_load_pth(path: &Path) {
    let base = rss().0;
    let var = Weights::open_pth(path, VAR_STATE_DICT).expect("open");
    let keys: Vec<String> = var
        .keys()
        .filter(|k| is_inference_key(Component::Var, k))
        .map(str::to_string)
        .collect();
    let requested: u64 = keys.iter().map(|k| tensor_bytes(&var, k)).sum();
    let t0 = std::time::Instant::now();
    let tensors: Vec<_> = keys
        .iter()
        .map(|k| var.tensor_as(k, DType::F32, &Device::Cpu).expect("tensor"))
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    report(
        &format!(".pth lazy load of {} tensors ({secs:.2}s)", tensors.len()),
        requested,
        base,
    );
    println!(
        "  bytes read from the file: {:.1} MB",
        var.bytes_read() as f64 / 1e6
    );
    drop(tensors);
}

fn child_convert(pth: &Path, out: &Path) {
    let base = rss().0;
    let var = Weights::open_pth(pth, VAR_STATE_DICT).expect("open var");
    let vae = Weights::open_pth(pth, VAE_STATE_DICT).expect("open vae");
    let t0 = std::time::Instant::now();
    let summary = weights::convert(
        &var,
        &vae,
        is_inference_key,
        out,
        DType::F16,
        HashMap::new(),
    )
    .expect("convert");
    let secs = t0.elapsed().as_secs_f64();
    let largest = var.keys().map(|k| tensor_bytes(&var, k)).max().unwrap_or(0);
    report(
        &format!(
            "convert to f16 safetensors ({} tensors, {secs:.2}s)",
            summary.tensors
        ),
        summary.data_bytes,
        base,
    );
    println!(
        "  largest single f32 tensor: {:.1} MB",
        largest as f64 / 1e6
    );
}

fn child_load_st(path: &Path) {
    let base = rss().0;
    let w = Weights::open_safetensors(path).expect("open");
    let keys: Vec<String> = w.keys().map(str::to_string).collect();
    let requested: u64 = keys.iter().map(|k| tensor_bytes(&w, k)).sum();
    let tensors: Vec<_> = keys
        .iter()
        .map(|k| w.tensor(k, &Device::Cpu).expect("tensor"))
        .collect();
    report(
        &format!("safetensors (mmap) load of {} tensors", tensors.len()),
        requested,
        base,
    );
    drop(tensors);
}

// ---------------------------------------------------------------- synthetic torch checkpoint

/// Minimal pickle protocol-2 writer for torch's checkpoint layout.
struct Pickle(Vec<u8>);

impl Pickle {
    fn str(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
    }
    fn int(&mut self, v: i32) {
        self.0.push(b'J');
        self.0.extend(v.to_le_bytes());
    }
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
    }
    fn tuple_of(&mut self, items: &[usize]) {
        self.0.push(b'(');
        for d in items {
            self.int(*d as i32);
        }
        self.0.push(b't');
    }
    /// `_rebuild_tensor_v2(storage, 0, shape, contiguous stride, False, OrderedDict())`.
    fn tensor(&mut self, key: usize, shape: &[usize]) {
        let numel: usize = shape.iter().product();
        let mut stride = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.0.push(b'(');
        self.0.push(b'(');
        self.str("storage");
        self.global("torch", "FloatStorage");
        self.str(&key.to_string());
        self.str("cpu");
        self.int(numel as i32);
        self.0.push(b't');
        self.0.push(b'Q');
        self.int(0);
        self.tuple_of(shape);
        self.tuple_of(&stride);
        self.0.push(0x89);
        self.global("collections", "OrderedDict");
        self.0.push(b')');
        self.0.push(b'R');
        self.0.push(b't');
        self.0.push(b'R');
    }
}

/// Writes the checkpoint; returns (bytes of inference weights, file size).
fn write_synthetic(path: &Path, mb: usize) -> std::io::Result<(u64, u64)> {
    // Transformer-like: per block four big matrices; dims chosen so that `mb` MB of weights results.
    let c = 512usize;
    let per_block = (3 * c * c + c * c + 4 * c * c * 2 + 6 * c * c) * 4;
    let depth = (mb * 1_000_000 / per_block).max(1);
    let mut params: Vec<(String, Vec<usize>)> = vec![("pos_start".into(), vec![1, 1025, c])];
    for i in 0..depth {
        params.push((format!("blocks.{i}.attn.mat_qkv.weight"), vec![3 * c, c]));
        params.push((format!("blocks.{i}.attn.proj.weight"), vec![c, c]));
        params.push((format!("blocks.{i}.ffn.fc1.weight"), vec![4 * c, c]));
        params.push((format!("blocks.{i}.ffn.fc2.weight"), vec![c, 4 * c]));
        params.push((format!("blocks.{i}.ada_lin.1.weight"), vec![6 * c, c]));
        params.push((format!("blocks.{i}.attn.zero_k_bias"), vec![c]));
    }
    params.push(("head.weight".into(), vec![4096, c]));
    let buffers = vec![("attn_bias_for_masking".to_string(), vec![1, 1, 1600, 1600])];

    let mut p = Pickle(vec![0x80, 2]);
    let mut storages: Vec<Vec<usize>> = Vec::new();
    p.0.push(b'}');
    p.0.push(b'(');
    p.str("epoch");
    p.int(9);
    p.str("trainer");
    p.0.push(b'}');
    p.0.push(b'(');
    p.str("var_wo_ddp");
    p.0.push(b'}');
    p.0.push(b'(');
    for (name, shape) in params.iter().chain(&buffers) {
        p.str(name);
        let key = add_storage(&mut storages, shape);
        p.tensor(key, shape);
    }
    p.0.push(b'u');
    p.str("vae_local");
    p.0.push(b'}');
    p.0.push(b'(');
    for (name, shape) in [
        ("decoder.conv_in.weight", vec![64, 32, 3, 3]),
        ("quant_conv.weight", vec![32, 32, 1, 1]),
    ] {
        p.str(name);
        let key = add_storage(&mut storages, &shape);
        p.tensor(key, &shape);
    }
    p.0.push(b'u');
    p.str("var_opt");
    p.0.push(b'}');
    p.0.push(b'(');
    p.str("state");
    p.0.push(b'}');
    p.0.push(b'(');
    for (i, (_, shape)) in params.iter().enumerate() {
        p.int(i as i32);
        p.0.push(b'}');
        p.0.push(b'(');
        for moment in ["exp_avg", "exp_avg_sq"] {
            p.str(moment);
            let key = add_storage(&mut storages, shape);
            p.tensor(key, shape);
        }
        p.0.push(b'u');
    }
    p.0.push(b'u');
    p.0.push(b'u');
    p.0.push(b'u');
    p.0.push(b'u');
    p.0.push(b'.');

    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true)
        .with_alignment(64);
    let err = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    zip.start_file("VARSR/data.pkl", opts).map_err(err)?;
    zip.write_all(&p.0)?;
    let chunk: Vec<u8> = (0..1 << 16)
        .flat_map(|i| (i as f32 * 1e-3).to_le_bytes())
        .collect();
    for (key, shape) in storages.iter().enumerate() {
        zip.start_file(format!("VARSR/data/{key}"), opts)
            .map_err(err)?;
        let mut left = shape.iter().product::<usize>() * 4;
        while left > 0 {
            let n = left.min(chunk.len());
            zip.write_all(&chunk[..n])?;
            left -= n;
        }
    }
    zip.finish().map_err(err)?.flush()?;
    let weights: u64 = params
        .iter()
        .filter(|(n, _)| is_inference_key(Component::Var, n))
        .map(|(_, s)| (s.iter().product::<usize>() * 4) as u64)
        .sum();
    Ok((weights, std::fs::metadata(path)?.len()))
}

fn add_storage(storages: &mut Vec<Vec<usize>>, shape: &[usize]) -> usize {
    storages.push(shape.to_vec());
    storages.len() - 1
}
