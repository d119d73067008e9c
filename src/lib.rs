//! `cdw`: the CD Workbench library.
//!
//! Dependencies point one way: `config`, `events` <- `data`, `model`, `store` <- `eval` <- `train`
//! <- `commands`. Only `tui` (the terminal workbench) imports a terminal UI crate, and it reads
//! runs through `store` and `events` alone; training reports plain [`events`].
//!
//! Outside tests no `unwrap()`: a failure is an error that names what went wrong, or an
//! `expect` that says why it cannot happen (as gitui does).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

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
