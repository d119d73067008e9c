//! `cdw`: the CD Workbench library.
//!
//! Dependencies point one way: `config`, `events` <- `data`, `model`, `store` <- `eval` <- `train`
//! <- `commands`. Only `tui` (the terminal workbench) imports a terminal UI crate, and it reads
//! runs through `store` and `events` alone; training reports plain [`events`].

pub mod commands;
pub mod config;
pub mod console;
pub mod data;
pub mod device;
pub mod eval;
pub mod events;
pub mod model;
pub mod pickle;
pub mod store;
pub mod train;
pub mod tui;

#[cfg(test)]
mod testing;
