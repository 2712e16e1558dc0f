//! `--device auto|cpu|cuda[:N]` and `--dtype f32|f16|bf16`.

use candle_core::{DType, Device};

pub use crate::pipeline::device::Precision;

/// Why half precision is refused on a CPU.
const HALF_ON_CPU: &str =
    "half precision is meant for CUDA: on a CPU it is not faster, and it is not checked there";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(DeviceArg::Auto),
            "cpu" => Ok(DeviceArg::Cpu),
            "cuda" | "gpu" => Ok(DeviceArg::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceArg::Cuda)
                .ok_or_else(|| format!("`{s}` is not a device: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl DeviceArg {
    /// The device, and a name for people. `Auto` takes the first CUDA device when this build has
    /// CUDA and a driver, else the CPU; an explicit CUDA device that is missing is an error.
    pub fn open(self) -> Result<(Device, String), String> {
        match self {
            DeviceArg::Cpu => Ok((Device::Cpu, "CPU".into())),
            DeviceArg::Auto => match Device::new_cuda(0) {
                Ok(d) => Ok((d, "CUDA GPU 0".into())),
                Err(_) => Ok((Device::Cpu, "CPU".into())),
            },
            DeviceArg::Cuda(n) => Device::new_cuda(n)
                .map(|d| (d, format!("CUDA GPU {n}")))
                .map_err(|e| {
                    if cfg!(feature = "cuda") {
                        format!("CUDA device {n} is not available: {e}")
                    } else {
                        "this build of varsr has no CUDA support (build with --features cuda); use --device cpu"
                            .to_string()
                    }
                }),
        }
    }
}

impl DeviceArg {
    /// Refuses, before anything is loaded, a precision that the asked-for device cannot run.
    pub fn check_precision(self, precision: Precision) -> Result<(), String> {
        match self {
            DeviceArg::Cpu if precision != Precision::F32 => Err(format!(
                "--dtype {precision} is not available with --device cpu ({HALF_ON_CPU}); use --dtype f32 or --device cuda"
            )),
            _ => Ok(()),
        }
    }
}

/// The dtype to load the model in on an opened device (`name` as [`DeviceArg::open`] gave it), or why
/// that combination is refused (half precision on a CPU, which `auto` may have fallen back to).
pub fn model_dtype(device: &Device, name: &str, precision: Precision) -> Result<DType, String> {
    if device.is_cpu() && precision != Precision::F32 {
        return Err(format!(
            "--dtype {precision} needs a CUDA device, but this runs on the {name} ({HALF_ON_CPU}); \
             use --dtype f32 or --device cuda"
        ));
    }
    Ok(precision.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse(), Ok(DeviceArg::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceArg::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceArg::Cuda(0)));
        assert_eq!("cuda:2".parse(), Ok(DeviceArg::Cuda(2)));
        assert!("cuda:x".parse::<DeviceArg>().is_err());
        assert!("tpu".parse::<DeviceArg>().is_err());
    }

    #[test]
    fn half_precision_is_refused_on_the_cpu() {
        assert!(DeviceArg::Cpu.check_precision(Precision::F32).is_ok());
        let e = DeviceArg::Cpu.check_precision(Precision::F16).unwrap_err();
        assert!(
            e.contains("--dtype f16") && e.contains("--device cpu"),
            "{e}"
        );
        assert!(DeviceArg::Cuda(0).check_precision(Precision::Bf16).is_ok());
        assert!(DeviceArg::Auto.check_precision(Precision::Bf16).is_ok());
        assert_eq!(
            model_dtype(&Device::Cpu, "CPU", Precision::F32),
            Ok(DType::F32)
        );
        let e = model_dtype(&Device::Cpu, "CPU", Precision::Bf16).unwrap_err();
        assert!(e.contains("bf16") && e.contains("CPU"), "{e}");
    }
}
