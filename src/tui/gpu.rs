//! What the GPUs (and the training process) are doing, for the dashboard's GPU panel. Readings
//! come from NVML (`nvml-wrapper` loads `libnvidia-ml` at run time, so the same binary runs on a
//! machine without an NVIDIA driver); a reading a device does not support is `None` (shown as
//! N/A), never an error. NVML creates no CUDA context, so the UI holds no GPU memory. The
//! training process's own CPU and memory use come from `/proc`.

use std::collections::VecDeque;
use std::fs;
use std::time::Instant;

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

/// Samples of history kept per device (one every [`super::dashboard::GPU_EVERY`]).
pub const HISTORY: usize = 60;

/// One device at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceReading {
    pub index: u32,
    pub name: String,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    /// Percent of time a kernel ran over the driver's last sample period.
    pub utilisation: Option<u32>,
    /// Degrees Celsius.
    pub temperature: Option<u32>,
    /// Milliwatts.
    pub power: Option<u32>,
    /// Bytes of this device's memory the followed process holds (NVML's process list).
    pub process_memory: Option<u64>,
}

/// A device's latest reading and its recent utilisation and memory use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceHistory {
    pub last: DeviceReading,
    pub utilisation: VecDeque<u64>,
    /// Memory used, in MiB.
    pub memory: VecDeque<u64>,
}

/// The followed process as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessUse {
    /// Percent of one core over the last interval.
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes.
    pub rss: Option<u64>,
}

/// Everything the GPU panel shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuView {
    pub devices: Vec<DeviceHistory>,
    /// Why there are no device readings ("no NVML: ...", "CPU run"), when there are none.
    pub unavailable: Option<String>,
    pub process: ProcessUse,
    /// The training's pid, when it is alive.
    pub pid: Option<u32>,
}

impl GpuView {
    /// Takes a new set of readings into the histories.
    pub fn record(&mut self, readings: Vec<DeviceReading>) {
        for r in readings {
            let pos = self.devices.iter().position(|d| d.last.index == r.index);
            let d = if let Some(i) = pos {
                &mut self.devices[i]
            } else {
                self.devices.push(DeviceHistory::default());
                let last = self.devices.len() - 1;
                &mut self.devices[last]
            };
            push_capped(&mut d.utilisation, u64::from(r.utilisation.unwrap_or(0)));
            push_capped(&mut d.memory, r.memory_used.unwrap_or(0) >> 20);
            d.last = r;
        }
    }

    /// Bytes of GPU memory the process holds over all devices, if any device says.
    pub fn process_gpu_memory(&self) -> Option<u64> {
        let held: Vec<u64> = self
            .devices
            .iter()
            .filter_map(|d| d.last.process_memory)
            .collect();
        (!held.is_empty()).then(|| held.iter().sum())
    }
}

fn push_capped(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

/// Where readings come from.
pub struct Sampler {
    nvml: Result<Nvml, String>,
    /// The process's CPU time (clock ticks) at the last sample, and when.
    last_cpu: Option<(u32, u64, Instant)>,
}

impl Sampler {
    /// Loads NVML if the machine has it; otherwise every sample says why not.
    pub fn new() -> Sampler {
        Sampler {
            nvml: Nvml::init().map_err(|e| format!("no NVML ({e})")),
            last_cpu: None,
        }
    }

    /// A sampler that never reads a GPU (for tests and `--no-gpu` style uses).
    pub fn without_nvml(reason: &str) -> Sampler {
        Sampler {
            nvml: Err(reason.to_string()),
            last_cpu: None,
        }
    }

    /// Reads every device and the process `pid` into `view`.
    pub fn sample(&mut self, view: &mut GpuView, pid: Option<u32>) {
        view.pid = pid;
        match &self.nvml {
            Ok(nvml) => {
                view.unavailable = None;
                view.record(read_devices(nvml, pid));
                if view.devices.is_empty() {
                    view.unavailable = Some("NVML sees no device".into());
                }
            }
            Err(why) => view.unavailable = Some(why.clone()),
        }
        view.process = match pid {
            Some(pid) => self.process_use(pid),
            None => ProcessUse::default(),
        };
    }

    fn process_use(&mut self, pid: u32) -> ProcessUse {
        let now = Instant::now();
        let ticks = cpu_ticks(pid);
        let cpu_percent = match (ticks, self.last_cpu) {
            (Some(t), Some((p, before, at))) if p == pid && t >= before => {
                let secs = now.duration_since(at).as_secs_f64();
                #[allow(clippy::cast_precision_loss)]
                let used = (t - before) as f64 / clock_ticks_per_second();
                (secs > 0.0).then(|| 100.0 * used / secs)
            }
            _ => None,
        };
        self.last_cpu = ticks.map(|t| (pid, t, now));
        ProcessUse {
            cpu_percent,
            rss: resident_bytes(pid),
        }
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

fn read_devices(nvml: &Nvml, pid: Option<u32>) -> Vec<DeviceReading> {
    let count = nvml.device_count().unwrap_or(0);
    let mut out = Vec::new();
    for index in 0..count {
        let Ok(d) = nvml.device_by_index(index) else {
            continue;
        };
        let memory = d.memory_info().ok();
        let process_memory = pid.and_then(|pid| {
            let procs = d.running_compute_processes().ok()?;
            let mine = procs.iter().find(|p| p.pid == pid)?;
            match mine.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            }
        });
        out.push(DeviceReading {
            index,
            name: d.name().unwrap_or_else(|_| format!("GPU {index}")),
            memory_used: memory.as_ref().map(|m| m.used),
            memory_total: memory.as_ref().map(|m| m.total),
            utilisation: d.utilization_rates().ok().map(|u| u.gpu),
            temperature: d.temperature(TemperatureSensor::Gpu).ok(),
            power: d.power_usage().ok(),
            process_memory,
        });
    }
    out
}

/// utime + stime of `pid` in clock ticks (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it start past its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS of `pid` in bytes.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[allow(clippy::cast_precision_loss)]
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(resident_bytes(pid).unwrap() > 1 << 20);
        let before = cpu_ticks(pid).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 150 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(cpu_ticks(pid).unwrap() >= before);
        assert_eq!(cpu_ticks(u32::MAX), None, "no such process");
    }

    #[test]
    fn a_sampler_without_nvml_says_why_and_still_reads_the_process() {
        let mut s = Sampler::without_nvml("no NVML (libnvidia-ml.so not found)");
        let mut v = GpuView::default();
        let me = std::process::id();
        s.sample(&mut v, Some(me));
        assert_eq!(
            v.unavailable.as_deref(),
            Some("no NVML (libnvidia-ml.so not found)")
        );
        assert!(v.devices.is_empty());
        assert!(v.process.rss.is_some());
        assert_eq!(v.process.cpu_percent, None, "one sample gives no rate yet");
        std::thread::sleep(std::time::Duration::from_millis(30));
        s.sample(&mut v, Some(me));
        assert!(v.process.cpu_percent.is_some());
    }

    #[test]
    fn histories_are_capped_and_kept_per_device() {
        let mut v = GpuView::default();
        for i in 0..(HISTORY as u32 + 5) {
            v.record(vec![
                DeviceReading {
                    index: 0,
                    utilisation: Some(i),
                    memory_used: Some(u64::from(i) << 20),
                    process_memory: Some(100),
                    ..DeviceReading::default()
                },
                DeviceReading {
                    index: 1,
                    utilisation: None,
                    process_memory: Some(50),
                    ..DeviceReading::default()
                },
            ]);
        }
        assert_eq!(v.devices.len(), 2);
        assert_eq!(v.devices[0].utilisation.len(), HISTORY);
        assert_eq!(v.devices[0].utilisation.back(), Some(&(HISTORY as u64 + 4)));
        assert_eq!(v.devices[0].memory.front(), Some(&5));
        assert_eq!(v.process_gpu_memory(), Some(150));
    }
}
