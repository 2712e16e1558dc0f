//! Training of the embedded default model with the project's own code, following the VARSR paper at
//! small scale: the multi-scale VQVAE tokenizer ([`tokenizer`]), then the SR transformer with its
//! diffusion refiner ([`transformer`]), on photos from Debian packages ([`data`]) with Real-ESRGAN-style
//! degradations ([`degrade`]). [`eval`] measures PSNR/SSIM against bicubic.

pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod degrade;
pub mod diffusion;
pub mod eval;
pub mod export;
pub mod fast_conv;
pub mod fast_modules;
pub mod init;
pub mod loops;
pub mod mask;
pub mod optim;
pub mod prefix;
pub mod small;
pub mod tokenizer;
pub mod transformer;

#[cfg(test)]
mod exposure_tests;
#[cfg(test)]
mod prefix_tests;
#[cfg(test)]
mod tests;
