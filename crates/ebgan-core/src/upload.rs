//! Host -> device copies inside training steps. tch's `to_device` copies synchronously, and a
//! synchronous host -> CUDA copy waits for every kernel queued before it: a few per step would
//! leave the GPU idle while the host catches up. A non-blocking copy from pageable memory is
//! staged by the driver before the call returns, so the host buffer may be dropped at once.

use tch::{Device, Tensor};

/// `t` (on the host) on `device`, without synchronising the device's stream.
pub fn upload(t: Tensor, device: Device) -> Tensor {
    if device.is_cuda() {
        t.to_device_(device, t.kind(), true, false)
    } else {
        t.to_device(device)
    }
}
