//! `--device auto|cpu|cuda[:N]`.

use candle_core::Device;

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
}
