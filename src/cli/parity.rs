//! `varsr parity`: runs parity fixtures (models run through the published code, with every intermediate
//! value recorded) on a chosen device and precision, and prints how far each quantity is from the
//! reference. At f32 the tokens must be identical and the differences within the parity test's
//! tolerances; at f16/bf16 the agreement is reported, and only errors or non-finite values fail.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::device::{self, DeviceArg, Precision};
use crate::pipeline::engine::{Engine, ModelSpec};
use crate::pipeline::fixture::{self, Comparison, Fixture, Tolerances};

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
A fixture folder holds VARSR.pth, VQVAE.pth, config.json and reference.safetensors (tests/fixtures/parity/README.md).
The exit status is 0 when every fixture passed, 1 when any failed, 2 for bad arguments.

Examples:
  varsr parity tests/fixtures/parity --device cpu
  varsr parity tests/fixtures/parity --device cuda --dtype bf16")]
pub struct ParityArgs {
    /// Fixture folders, or folders whose sub-folders are fixtures.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Where to run: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceArg,

    /// Precision of weights and activations: f32 (must match the reference), or f16/bf16 on CUDA
    /// (agreement reported, not required).
    #[arg(long, value_name = "DTYPE", default_value_t = Precision::F32)]
    pub dtype: Precision,
}

pub fn run(args: ParityArgs) -> ExitCode {
    if let Err(e) = args.device.check_precision(args.dtype) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let dirs = match fixture::find(&args.dirs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let opened = args.device.open().and_then(|(device, name)| {
        let dtype = device::model_dtype(&device, &name, args.dtype)?;
        Ok((device, name, dtype))
    });
    let (device, device_name, dtype) = match opened {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for dir in &dirs {
        let started = Instant::now();
        let result = Fixture::load(dir).and_then(|fx| {
            let engine = Engine::load_with(&ModelSpec::Path(dir.clone()), &device, dtype)?;
            let run = fx.run(&engine)?;
            let cmp = Comparison::new(&fx, &run, engine.patch_nums())?;
            Ok((fx, engine, cmp))
        });
        let name = dir.display();
        let ok = match result {
            Ok((fx, engine, cmp)) => {
                println!(
                    "{} · {device_name} · {} · {:.1} s\n  model: {}",
                    fx.name,
                    args.dtype,
                    started.elapsed().as_secs_f64(),
                    engine.description
                );
                print_table(&cmp);
                let problems = verdict(&fx, &engine, &cmp, args.dtype);
                for p in &problems {
                    println!("  FAILED: {p}");
                }
                if problems.is_empty() {
                    println!("  ok");
                }
                problems.is_empty()
            }
            Err(e) => {
                println!("{name} · {device_name} · {}\n  FAILED: {e}", args.dtype);
                false
            }
        };
        failed += usize::from(!ok);
        println!();
    }
    println!(
        "{} fixture{} at {} on {device_name}: {} passed, {failed} failed",
        dirs.len(),
        if dirs.len() == 1 { "" } else { "s" },
        args.dtype,
        dirs.len() - failed
    );
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Max |Δ| for people: a dash where nothing was recorded, "non-finite" for NaN.
fn diff(d: Option<f32>) -> String {
    match d {
        None => "–".into(),
        Some(d) if d.is_nan() => "non-finite".into(),
        Some(d) => format!("{d:.2e}"),
    }
}

fn print_table(cmp: &Comparison) {
    println!(
        "  {:>5} {:>4} {:>20} {:>16} {:>16}",
        "scale", "pn", "tokens identical", "max |Δ| logits", "max |Δ| latent"
    );
    for s in &cmp.scales {
        let count = format!("{}/{}", s.identical, s.total);
        println!(
            "  {:>5} {:>4} {count:>11} {:>6.2} % {:>16} {:>16}",
            s.scale,
            s.pn,
            s.percent(),
            diff(s.logits),
            diff(Some(s.latent))
        );
    }
    let tol = Tolerances::F32;
    let row = |what: &str, d: f32, t: f32| {
        println!(
            "  {what:<22} max |Δ| {:>10}   (f32 tolerance {t:.0e})",
            diff(Some(d))
        );
    };
    row("LR encoder output", cmp.prefix, tol.prefix);
    row("refiner condition", cmp.refiner_cond, tol.refiner);
    row("refiner output", cmp.refiner_out, tol.refiner);
    row("decoded image", cmp.image, tol.image);
    println!(
        "  token agreement: {:.2} % over {} scales; max |Δ| logits {}, latents {}",
        cmp.token_percent(),
        cmp.scales.len(),
        diff(Some(cmp.worst_logits())),
        diff(Some(cmp.worst_latent()))
    );
}

/// What makes this fixture fail at this precision. At f32 everything must match; at half precision
/// differing tokens and larger differences are expected, so only structural problems and non-finite
/// values fail (the differences beyond the f32 tolerances are listed as notes).
fn verdict(fx: &Fixture, engine: &Engine, cmp: &Comparison, precision: Precision) -> Vec<String> {
    let mut problems = fx.config_mismatches(engine);
    if cmp.unused_draws > 0 {
        problems.push(format!(
            "{} recorded refiner draws unused (our sampler draws less than the reference)",
            cmp.unused_draws
        ));
    }
    if !cmp.finite() {
        problems.push("non-finite values in the output".into());
    }
    let beyond = cmp.beyond(&Tolerances::F32);
    if precision == Precision::F32 {
        if let Some(si) = cmp.first_token_difference() {
            problems.push(format!("tokens differ first at scale {si}"));
        }
        problems.extend(beyond);
    } else {
        for b in beyond.iter().filter(|_| cmp.finite()) {
            println!("  note: {b} (expected at {precision}; not a failure)");
        }
    }
    problems
}
