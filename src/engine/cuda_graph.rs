//! CUDA graphs: a training step captured once and replayed, so that one launch runs its
//! hundreds of small kernels instead of the host launching each one (a LeNet5 step at
//! 10 models launched 202 kernels and kept the GPU busy a quarter of the time:
//! BENCHMARKS.md). tch has no graph or stream API: `csrc/cuda_graph.cpp` wraps libtorch's
//! `at::cuda::CUDAGraph`, compiled by `build.rs` where libtorch has CUDA.
//!
//! What a captured step must respect (PyTorch's own rules for `torch.cuda.graph`): its
//! work is warmed up on the capture stream first; nothing in it waits for the host
//! (no `.item()`, no copy from host memory); its inputs are tensors at fixed addresses,
//! filled before each replay; what it allocates lives in the graph's own memory pool
//! and is overwritten by the next replay. Replays are launched on the default stream,
//! in order with everything else the program queues there.

/// Why no graph could be used.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("this homeonorm was built without CUDA graphs (no CUDA runtime headers where it was built)")]
    NotBuilt,
    #[error("CUDA graph: {0}")]
    Cuda(String),
    #[error("CUDA graph capture failed: {0}")]
    Capture(String),
}

#[cfg(homeonorm_cuda_graph)]
mod ffi {
    use std::ffi::c_char;
    #[repr(C)]
    pub struct HnGraph {
        _private: [u8; 0],
    }
    extern "C" {
        pub fn hn_free_error(error: *mut c_char);
        pub fn hn_graph_new(out: *mut *mut HnGraph) -> *mut c_char;
        pub fn hn_graph_free(g: *mut HnGraph);
        pub fn hn_graph_enter_side_stream(g: *mut HnGraph) -> *mut c_char;
        pub fn hn_graph_leave_side_stream(g: *mut HnGraph) -> *mut c_char;
        pub fn hn_graph_capture_begin(g: *mut HnGraph) -> *mut c_char;
        pub fn hn_graph_capture_end(g: *mut HnGraph) -> *mut c_char;
        pub fn hn_graph_counts(g: *const HnGraph, nodes: *mut usize, kernels: *mut usize);
        pub fn hn_graph_replay(g: *mut HnGraph) -> *mut c_char;
    }
}

/// A shim call's error message, freed.
#[cfg(homeonorm_cuda_graph)]
fn check(error: *mut std::ffi::c_char) -> Result<(), GraphError> {
    use std::ffi::CStr;
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated message the shim allocated for us.
    let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { ffi::hn_free_error(error) };
    Err(GraphError::Cuda(message))
}

/// One captured piece of work, and the side stream it was captured on.
pub struct CudaGraph {
    #[cfg(homeonorm_cuda_graph)]
    raw: *mut ffi::HnGraph,
    captured: bool,
}

impl CudaGraph {
    /// Whether this build can capture graphs (a CUDA device is needed besides).
    pub const fn built() -> bool {
        cfg!(homeonorm_cuda_graph)
    }

    /// A graph to capture into (on the current CUDA device).
    pub fn new() -> Result<CudaGraph, GraphError> {
        #[cfg(homeonorm_cuda_graph)]
        {
            let mut raw = std::ptr::null_mut();
            // SAFETY: the shim writes a fresh graph into `raw` or returns an error.
            check(unsafe { ffi::hn_graph_new(&mut raw) })?;
            Ok(CudaGraph { raw, captured: false })
        }
        #[cfg(not(homeonorm_cuda_graph))]
        Err(GraphError::NotBuilt)
    }

    /// Runs `work` on the graph's side stream (after everything queued before it), as
    /// the warm-up before a capture must run; the default stream waits for it after.
    pub fn on_side_stream<T>(&mut self, work: impl FnOnce() -> T) -> Result<T, GraphError> {
        #[cfg(homeonorm_cuda_graph)]
        {
            // SAFETY: `raw` is this graph's, alive until drop.
            check(unsafe { ffi::hn_graph_enter_side_stream(self.raw) })?;
            let result = work();
            check(unsafe { ffi::hn_graph_leave_side_stream(self.raw) })?;
            Ok(result)
        }
        #[cfg(not(homeonorm_cuda_graph))]
        {
            let _ = work;
            Err(GraphError::NotBuilt)
        }
    }

    /// Captures the CUDA work `work` queues (it runs nothing yet: [`replay`](Self::replay)
    /// does) and returns what `work` returned: the tensors it made, which each replay
    /// fills anew. A graph is captured once.
    pub fn capture<T>(&mut self, work: impl FnOnce() -> T) -> Result<T, GraphError> {
        assert!(!self.captured, "a CUDA graph is captured once");
        #[cfg(homeonorm_cuda_graph)]
        {
            let raw = self.raw;
            let captured = self.on_side_stream(|| {
                check(unsafe { ffi::hn_graph_capture_begin(raw) })?;
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                // Ended in every case: a capture left open would capture whatever comes next.
                let ended = check(unsafe { ffi::hn_graph_capture_end(raw) });
                match (result, ended) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(panic), _) => Err(GraphError::Capture(panic_message(&panic))),
                    (Ok(_), Err(e)) => Err(GraphError::Capture(e.to_string())),
                }
            })??;
            self.captured = true;
            Ok(captured)
        }
        #[cfg(not(homeonorm_cuda_graph))]
        {
            let _ = work;
            Err(GraphError::NotBuilt)
        }
    }

    /// Launches the captured work on the current (default) stream.
    pub fn replay(&mut self) -> Result<(), GraphError> {
        assert!(self.captured, "replay of a CUDA graph never captured");
        #[cfg(homeonorm_cuda_graph)]
        return check(unsafe { ffi::hn_graph_replay(self.raw) });
        #[cfg(not(homeonorm_cuda_graph))]
        Err(GraphError::NotBuilt)
    }

    /// The captured graph's nodes and, of them, kernels (0 where the runtime did not say).
    pub fn counts(&self) -> (usize, usize) {
        #[cfg(homeonorm_cuda_graph)]
        {
            let (mut nodes, mut kernels) = (0, 0);
            unsafe { ffi::hn_graph_counts(self.raw, &mut nodes, &mut kernels) };
            (nodes, kernels)
        }
        #[cfg(not(homeonorm_cuda_graph))]
        (0, 0)
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        #[cfg(homeonorm_cuda_graph)]
        unsafe {
            ffi::hn_graph_free(self.raw)
        };
    }
}

/// A caught panic's message (tch panics with libtorch's error text).
#[cfg_attr(not(homeonorm_cuda_graph), allow(dead_code))]
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}
