//! Host -> device copies inside training steps. tch's `to_device` copies synchronously, and a
//! synchronous host -> CUDA copy waits for every kernel queued before it: a few per step would
//! leave the GPU idle while the host catches up. Uploads here are non-blocking copies from pinned
//! memory.

//!
//! Training uploads through [`upload`] and reads back through [`read`], so that this thread's
//! [`transfers`] count every copy a step makes (on the CPU too, where both are plain copies: the
//! count is the code path's, the same on every device).

use std::cell::Cell;
use tch::{kind::Element, Device, TchError, Tensor};

thread_local! {
    static UPLOADS: Cell<u64> = const { Cell::new(0) };
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// Host-to-device uploads and device-to-host reads made on this thread so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    pub uploads: u64,
    pub reads: u64,
}

pub fn transfers() -> Transfers {
    Transfers {
        uploads: UPLOADS.with(Cell::get),
        reads: READS.with(Cell::get),
    }
}

/// The values of `t`, read back to the host (on CUDA this waits for every queued kernel).
pub fn read<T: Element + Copy>(t: &Tensor) -> Result<Vec<T>, TchError> {
    READS.with(|c| c.set(c.get() + 1));
    Vec::<T>::try_from(t.flatten(0, -1))
}

/// `t` (on the host) on `device`, without synchronising the device's stream: on CUDA from
/// pinned memory (libtorch's caching host allocator, which keeps the block until the copy has
/// run), so the copy is truly asynchronous; from pageable memory if pinning fails.
///
/// Pinned through `_pin_memory`: tch's `pin_memory` always passes a device, and libtorch 2.11
/// prints a deprecation warning for that argument on every call (twice: `pin_memory` asks
/// `is_pinned` with it too). `_pin_memory` takes the device without a warning; it always copies,
/// which `pin_memory` would do too for a tensor not yet pinned (every upload's).
pub fn upload(t: Tensor, device: Device) -> Tensor {
    UPLOADS.with(|c| c.set(c.get() + 1));
    if device.is_cuda() {
        // Already there (a batch gathered on the device): pinning it would throw, and build a
        // C++ exception with its backtrace, every step.
        if t.device() == device {
            return t;
        }
        let t = t.f_internal_pin_memory(device).unwrap_or(t);
        t.to_device_(device, t.kind(), true, false)
    } else {
        t.to_device(device)
    }
}
