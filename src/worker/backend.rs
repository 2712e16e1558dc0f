//! The worker's only contact with the pipeline: load a model, plan a job's tiles, run a job.
//! Tensors stay in here; what leaves is RGBA.

use candle_core::Device;

use super::canvas::Layout;
use super::messages::{DeviceChoice, InputImage, JobOptions, ModelInfo, Picture, Tokens};
use crate::pipeline::engine::{Engine, ModelSpec};
use crate::pipeline::{Error, Observer, Result};

pub struct Loaded {
    pub engine: Engine,
    pub info: ModelInfo,
    /// Lines for the log (device fallbacks and the like).
    pub notes: Vec<String>,
}

/// The device for a choice, falling back to the CPU when CUDA is not there.
fn device(choice: DeviceChoice, notes: &mut Vec<String>) -> (Device, String) {
    match choice {
        DeviceChoice::Cpu => (Device::Cpu, "CPU".into()),
        DeviceChoice::Auto | DeviceChoice::Cuda => match Device::new_cuda(0) {
            Ok(d) => (d, "CUDA GPU 0".into()),
            Err(e) => {
                if choice == DeviceChoice::Cuda {
                    notes.push(format!("CUDA is not available ({e}); using the CPU instead."));
                    (Device::Cpu, "CPU (CUDA not available)".into())
                } else {
                    (Device::Cpu, "CPU".into())
                }
            }
        },
    }
}

pub fn load(spec: &ModelSpec, choice: DeviceChoice) -> std::result::Result<Loaded, String> {
    let mut notes = Vec::new();
    let (_device, device_name) = device(choice, &mut notes);
    let _ = (spec, device_name);
    Err("loading models is not wired up yet".into())
}

pub fn layout(_loaded: &Loaded, image: &InputImage, options: &JobOptions) -> Layout {
    Layout::single(
        image.picture.width() * options.scale,
        image.picture.height() * options.scale,
    )
}

pub fn upscale(
    _loaded: &Loaded,
    _image: &InputImage,
    _options: &JobOptions,
    _locked: Option<(&Tokens, usize)>,
    _observer: &mut dyn Observer,
) -> Result<Picture> {
    Err(Error::Invalid("upscaling is not wired up yet".into()))
}
