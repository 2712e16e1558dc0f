// Embeds the default model when it is present, so that a checkout without it still builds.
fn main() {
    let model = "models/varsr-studio-small.safetensors";
    println!("cargo::rustc-check-cfg=cfg(varsr_embedded_model)");
    println!("cargo::rerun-if-changed={model}");
    println!("cargo::rerun-if-changed=models");
    if std::path::Path::new(model).is_file() {
        println!("cargo::rustc-cfg=varsr_embedded_model");
    }
}
