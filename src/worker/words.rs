//! Failures in plain words for the window; the technical text goes to the log.

use crate::pipeline::engine::ModelSpec;

pub const NO_MODEL: &str = "No model is loaded. Choose a model (a folder with VARSR.pth and \
     VQVAE.pth, or a converted .safetensors file) under Model, then try again.";

fn is_out_of_memory(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("out of memory")
        || d.contains("out_of_memory")
        || d.contains("memory allocation")
        || d.contains("failed to allocate")
        || d.contains("capacity overflow")
}

fn is_missing_file(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("no such file")
        || d.contains("not found")
        || d.contains("cannot find")
        || d.contains("missing")
}

pub fn load_failure(spec: &ModelSpec, detail: &str) -> String {
    if is_out_of_memory(detail) {
        return "There is not enough memory to load this model. Close other programs, or \
                choose the CPU if the graphics card is small."
            .into();
    }
    match spec {
        ModelSpec::Embedded if is_missing_file(detail) || detail.contains("embedded") => {
            "This build has no built-in model. Choose a model folder (VARSR.pth and VQVAE.pth) \
             or a .safetensors file under Model."
                .into()
        }
        ModelSpec::Path(p) if is_missing_file(detail) => format!(
            "The model at {} was not found or is incomplete (a folder needs VARSR.pth and \
             VQVAE.pth).",
            p.display()
        ),
        ModelSpec::Path(p) => format!(
            "The model at {} could not be read. It may be damaged or not a VARSR model. \
             Details are in the log.",
            p.display()
        ),
        ModelSpec::Embedded => {
            "The built-in model could not be loaded. Details are in the log.".into()
        }
    }
}

pub fn run_failure(detail: &str, device: &str) -> String {
    if is_out_of_memory(detail) {
        return format!(
            "Out of memory on {device}. Try a smaller image or scale factor, close other \
             programs, or switch the device to CPU."
        );
    }
    format!("Upscaling failed: {detail}. The full message is in the log.")
}

/// The text of a caught panic.
pub fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_errors_read_as_memory_errors() {
        let m = run_failure(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")",
            "CUDA",
        );
        assert!(m.starts_with("Out of memory on CUDA"), "{m}");
        let m = run_failure("shape mismatch in matmul", "CPU");
        assert!(m.contains("shape mismatch"), "{m}");
    }

    #[test]
    fn missing_models_name_what_to_do() {
        let m = load_failure(
            &ModelSpec::Path("/nope".into()),
            "No such file or directory (os error 2)",
        );
        assert!(m.contains("/nope") && m.contains("VARSR.pth"), "{m}");
        let m = load_failure(&ModelSpec::Embedded, "embedded model missing");
        assert!(m.contains("no built-in model"), "{m}");
    }
}
