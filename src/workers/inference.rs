//! `ettin.inference = shared`: a background worker that supervises `ettin-inferd`, the process
//! that owns the models. ONNX Runtime never runs in a Postgres process in this mode: a crash in
//! inference kills only ettin-inferd (a crashed Postgres child would make the postmaster restart
//! every connection). The supervisor restarts it; backends see a clean ERROR meanwhile.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;

use crate::guc;
use crate::paths::{onnxruntime_library_path, pkglib_dir, INFERENCE_SOCKET};

/// Register the supervisor when ettin.inference = shared (workers/mod.rs calls this only while
/// shared_preload_libraries loads).
pub fn register() {
    if guc::INFERENCE.get() != guc::Inference::Shared {
        return;
    }
    BackgroundWorkerBuilder::new("ettin inference supervisor")
        .set_type("ettin inference supervisor")
        .set_function("ettin_supervisor_main")
        .set_library("ettin")
        .set_restart_time(Some(Duration::from_secs(5)))
        .enable_shmem_access(None)
        // After enable_shmem_access (which sets RecoveryFinished): a hot standby never finishes
        // recovery, and it should rerank too.
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .load();
}

fn spawn() -> std::io::Result<Child> {
    let device = match guc::DEVICE.get() {
        guc::DeviceSetting::Cpu => "cpu",
        guc::DeviceSetting::Cuda => "cuda",
        guc::DeviceSetting::Auto => "auto",
    };
    Command::new(pkglib_dir().join("ettin-inferd"))
        .arg("--socket")
        .arg(INFERENCE_SOCKET)
        .arg("--onnxruntime")
        .arg(onnxruntime_library_path())
        .args(["--threads", &guc::THREADS.get().max(0).to_string()])
        .args(["--spinning", if guc::SPINNING.get() { "on" } else { "off" }])
        .args(["--device", device])
        .args(["--cuda-device-id", &guc::CUDA_DEVICE_ID.get().to_string()])
        .args([
            "--cuda-tf32",
            if guc::CUDA_TF32.get() { "on" } else { "off" },
        ])
        .args([
            "--cuda-memory-limit",
            &(guc::CUDA_MEMORY_LIMIT_MB.get().max(0) as usize * 1024 * 1024).to_string(),
        ])
        .spawn()
}

/// The supervisor's main loop: keep one ettin-inferd running; restart it when it exits (after a
/// short pause that grows while it keeps failing); stop it when Postgres stops.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn ettin_supervisor_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let mut child: Option<(Child, Instant)> = None;
    let mut next_start = Instant::now();
    let mut backoff = Duration::from_millis(500);
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(200))) {
        if let Some((running, since)) = child.as_mut() {
            match running.try_wait() {
                Ok(None) => continue,
                Ok(Some(status)) => {
                    log!(
                        "ettin: inference worker (pid {}) exited: {status}; restarting",
                        running.id()
                    );
                    // A worker that ran a while had a one-off failure: restart quickly.
                    if since.elapsed() > Duration::from_secs(30) {
                        backoff = Duration::from_millis(500);
                    }
                    next_start = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    child = None;
                }
                Err(e) => {
                    warning!("ettin: cannot check the inference worker: {e}");
                    continue;
                }
            }
        }
        if child.is_none() && Instant::now() >= next_start {
            match spawn() {
                Ok(c) => {
                    log!("ettin: started inference worker (pid {})", c.id());
                    child = Some((c, Instant::now()));
                }
                Err(e) => {
                    warning!(
                        "ettin: cannot start {}: {e}",
                        pkglib_dir().join("ettin-inferd").display()
                    );
                    next_start = Instant::now() + Duration::from_secs(5);
                }
            }
        }
    }
    // SIGTERM (server shutdown): stop the worker with us.
    if let Some((mut c, _)) = child {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let _ = c.wait();
    }
    let _ = std::fs::remove_file(INFERENCE_SOCKET);
}
