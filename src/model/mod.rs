//! The networks of VARSR, mirroring the checkpoint keys of the released `VARSR.pth` / `VQVAE.pth`.

pub mod config;
pub mod diffloss;
pub mod encoder;
pub mod random_init;
pub mod rope;
pub mod transformer;
pub mod var;
pub mod vqvae;
