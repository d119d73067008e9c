//! `cdw info`: what this build and machine offer.

use std::path::PathBuf;

use tch::{utils, Cuda, Device, Kind, Tensor};

pub fn run() {
    println!("cdw {}", env!("CARGO_PKG_VERSION"));
    match loaded_libtorch() {
        Some((dir, version)) => println!("libtorch {version} (loaded from {})", dir.display()),
        None => println!(
            "libtorch: version unknown (built against {})",
            option_env!("CDW_LIBTORCH_LIB").unwrap_or("?")
        ),
    }
    let cuda = Cuda::is_available();
    println!("CUDA available: {}", yes_no(cuda));
    println!("cuDNN available: {}", yes_no(Cuda::cudnn_is_available()));
    let count = if cuda { Cuda::device_count() } else { 0 };
    println!("GPUs: {count}");
    for i in 0..count as usize {
        println!("  cuda:{i}: {}", gpu_description(i));
    }
    println!(
        "threads: {} (cores available: {})",
        tch::get_num_threads(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "MKL: {}, MKL-DNN: {}",
        yes_no(utils::has_mkl()),
        yes_no(utils::has_mkldnn())
    );
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The directory of the libtorch actually loaded in this process (from /proc/self/maps) and its
/// version, read from the files that ship beside it: `version.py` of a PyTorch wheel, or
/// `build-version` of a standalone libtorch.
fn loaded_libtorch() -> Option<(PathBuf, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .map(PathBuf::from)?;
    let dir = lib.parent()?.to_path_buf();
    let root = dir.parent()?;
    let version = if let Ok(py) = std::fs::read_to_string(root.join("version.py")) {
        let field = |name: &str| {
            py.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("{name} = "))
                        .or_else(|| l.strip_prefix(&format!("{name}: Optional[str] = ")))
                })
                .map(|v| v.trim().trim_matches('\'').to_string())
        };
        match (field("__version__"), field("cuda")) {
            (Some(v), Some(c)) if c != "None" => format!("{v} (CUDA {c})"),
            (Some(v), _) => v,
            _ => "unknown".into(),
        }
    } else if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        v.trim().to_string()
    } else {
        "unknown".into()
    };
    Some((dir, version))
}

/// Name and memory of GPU `i`, read through nvidia-smi when present, else a probe allocation.
fn gpu_description(i: usize) -> String {
    let smi = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total,memory.used",
            "--format=csv,noheader",
            &format!("--id={i}"),
        ])
        .output();
    if let Ok(out) = smi {
        if out.status.success() {
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !line.is_empty() {
                return line;
            }
        }
    }
    // Without nvidia-smi: at least prove the device takes an allocation.
    let t = Tensor::zeros([1], (Kind::Float, Device::Cuda(i)));
    format!("usable (allocation test passed: {:?})", t.device())
}
