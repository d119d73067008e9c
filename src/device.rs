//! Choosing the compute device, and what `cdw info` reports about the machine.

use tch::{Cuda, Device};

use crate::config::DeviceSpec;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeviceError {
    #[error("device `{spec}` was requested but CUDA is not available here (libtorch sees no GPU); use device=cpu or device=auto")]
    NoCuda { spec: String },
    #[error("device `cuda:{index}` does not exist: this machine has {count} CUDA device(s) (cuda:0..cuda:{last})", last = count.saturating_sub(1))]
    NoSuchGpu { index: usize, count: usize },
}

/// Resolves `auto` to CUDA 0 when available, else the CPU; `cuda[:N]` must exist.
pub fn resolve(spec: DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Auto => Ok(Device::cuda_if_available()),
        DeviceSpec::Cuda(index) => {
            if !Cuda::is_available() {
                return Err(DeviceError::NoCuda {
                    spec: spec.to_string(),
                });
            }
            let count = Cuda::device_count() as usize;
            if index >= count {
                return Err(DeviceError::NoSuchGpu { index, count });
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// Short name of a device: `cpu`, `cuda:0`.
pub fn name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_always_resolve() {
        assert_eq!(resolve(DeviceSpec::Cpu), Ok(Device::Cpu));
        let auto = resolve(DeviceSpec::Auto).unwrap();
        assert_eq!(auto == Device::Cpu, !Cuda::is_available());
    }

    #[test]
    fn cuda_without_gpu_is_a_clear_error() {
        if Cuda::is_available() {
            return; // this check is about machines without a GPU
        }
        let err = resolve(DeviceSpec::Cuda(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device `cuda` was requested but CUDA is not available here (libtorch sees no GPU); use device=cpu or device=auto"
        );
    }
}
