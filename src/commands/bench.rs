//! `cdw bench <what>`: measurements of cdw's own parts on this machine, printed as a table or as
//! one JSON object (`--json`). Each kind of measurement is a subcommand with its module under
//! `bench/`; this file holds the dispatch and what they share (machine load, CPU time).

mod data;
mod tui;

use std::time::Duration;

use clap::{Args, Subcommand};

use super::Failure;

#[derive(Debug, Args)]
pub struct BenchCmd {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Two-view data pipeline throughput (images/s) through the batch loader, for CIFAR-sized
    /// images and a JPEG folder, per worker count; JPEG decoding timed separately.
    Data(data::DataArgs),
    /// Frame time of the workbench's dashboard over a 1000-epoch, 100,000-step run (median and
    /// p99), at 80x24 and 200x60.
    Tui(tui::TuiArgs),
}

pub fn run(cmd: &BenchCmd) -> Result<(), Failure> {
    match &cmd.what {
        BenchWhat::Data(args) => data::run(args),
        BenchWhat::Tui(args) => tui::run(args),
    }
}

/// The 1, 5 and 15 minute load averages (Linux), to judge how busy the machine was.
pub(crate) fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// CPU time (user + system) used so far by every thread of this process, finished ones included
/// (Linux; 10 ms resolution).
pub(crate) fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime and stime are fields 14 and 15 (clock ticks of 1/100 s on Linux).
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Number of cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let Some(before) = process_cpu_time() else {
            return; // not Linux
        };
        // Spin until the clock ticks (10 ms of CPU), however busy the machine is.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu_time().unwrap() == before && t.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(process_cpu_time().unwrap() > before, "no CPU time counted");
    }

    #[test]
    fn load_average_has_three_values() {
        if let Some(l) = load_average() {
            assert!(l.iter().all(|v| *v >= 0.0));
        }
    }
}
