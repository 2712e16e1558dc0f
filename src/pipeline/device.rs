//! Choosing where and in which precision the model runs: `--device auto|cpu|cuda[:N]`,
//! `--dtype f32|f16|bf16`.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// CUDA when this build has it and a device opens, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!(
                    "unknown device `{s}`: use auto, cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// An opened device, with a note for people when it is not what they asked for.
#[derive(Debug)]
pub struct OpenedDevice {
    pub device: Device,
    pub note: Option<String>,
}

impl DeviceChoice {
    /// Opens the device. `Auto` falls back to the CPU with a note; an explicit `cuda` that cannot open
    /// is an error, because the person asked for it.
    pub fn open(self) -> Result<OpenedDevice, String> {
        let cuda = |n: usize| Device::new_cuda(n).map_err(|e| e.to_string());
        match self {
            Self::Cpu => Ok(OpenedDevice {
                device: Device::Cpu,
                note: None,
            }),
            Self::Cuda(n) if !candle_core::utils::cuda_is_available() => Err(format!(
                "cuda:{n} asked for, but this build has no CUDA support (build with --features cuda)"
            )),
            Self::Cuda(n) => cuda(n)
                .map(|device| OpenedDevice { device, note: None })
                .map_err(|e| format!("cannot open cuda:{n}: {e}")),
            Self::Auto if !candle_core::utils::cuda_is_available() => Ok(OpenedDevice {
                device: Device::Cpu,
                note: Some("running on the CPU (this build has no CUDA support)".into()),
            }),
            Self::Auto => match cuda(0) {
                Ok(device) => Ok(OpenedDevice { device, note: None }),
                Err(e) => Ok(OpenedDevice {
                    device: Device::Cpu,
                    note: Some(format!("running on the CPU: no CUDA device opened ({e})")),
                }),
            },
        }
    }
}

/// Precision of weights and activations. The published code keeps logits, RoPE, normalisation
/// statistics, the accumulated latent and the refiner schedule in f32 whatever this says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }

    /// Half precision is not faster on CPUs (candle computes it through f32), so the CPU uses f32.
    pub fn for_device(self, device: &Device) -> (Self, Option<String>) {
        if device.is_cpu() && self != Self::F32 {
            (
                Self::F32,
                Some(format!(
                    "{self} runs as f32 on the CPU (half precision is not faster there)"
                )),
            )
        } else {
            (self, None)
        }
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "f16" | "fp16" | "half" | "float16" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            _ => Err(format!("unknown precision `{s}`: use f32, f16 or bf16")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_and_precision_names() {
        assert_eq!("auto".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse::<DeviceChoice>(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(3)));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert!("tpu".parse::<DeviceChoice>().unwrap_err().contains("tpu"));
        assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
        assert!("f8".parse::<Precision>().is_err());
    }

    #[test]
    fn auto_without_cuda_falls_back_to_the_cpu_with_a_note() {
        if candle_core::utils::cuda_is_available() {
            return;
        }
        let opened = DeviceChoice::Auto.open().unwrap();
        assert!(opened.device.is_cpu());
        assert!(opened.note.unwrap().contains("CPU"));
        assert!(
            DeviceChoice::Cuda(0)
                .open()
                .unwrap_err()
                .contains("--features cuda")
        );
        let (p, note) = Precision::Bf16.for_device(&Device::Cpu);
        assert_eq!(p, Precision::F32);
        assert!(note.is_some());
    }
}
