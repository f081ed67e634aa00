//! ettin-inferd: the shared inference worker (`ettin.inference = shared`). Started and restarted
//! by ettin's supervisor background worker, never by hand in production:
//!
//!   ettin-inferd --socket PATH --onnxruntime LIB [--threads N] [--spinning on|off] [--device cpu|cuda|auto]
//!                [--cuda-device-id N] [--cuda-tf32 on|off] [--cuda-memory-limit BYTES]
//!
//! ONNX Runtime runs here, outside Postgres: if it crashes, only this process dies; the
//! supervisor starts a new one and backends get an ERROR for the requests in flight.

use std::path::PathBuf;
use std::process::ExitCode;

use ettin_engine::shared::{serve, ServerConfig};
use ettin_engine::{runtime, CudaOptions, DeviceChoice, LoadOptions};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ettin-inferd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    // Die with the supervisor: an orphaned worker would hold the socket and the models.
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    let mut socket = None;
    let mut library = None;
    let mut load = LoadOptions::default();
    let mut cuda = CudaOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--socket" => socket = Some(PathBuf::from(value()?)),
            "--onnxruntime" => library = Some(PathBuf::from(value()?)),
            "--threads" => {
                load.intra_threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--spinning" => load.spinning = value()? == "on",
            "--device" => {
                load.device = match value()?.as_str() {
                    "cpu" => DeviceChoice::Cpu,
                    "cuda" => DeviceChoice::Cuda,
                    "auto" => DeviceChoice::Auto,
                    other => return Err(format!("--device: unknown device {other:?}")),
                }
            }
            "--cuda-device-id" => {
                cuda.device_id = value()?
                    .parse()
                    .map_err(|e| format!("--cuda-device-id: {e}"))?
            }
            "--cuda-tf32" => cuda.tf32 = value()? == "on",
            "--cuda-memory-limit" => {
                cuda.memory_limit = value()?
                    .parse()
                    .map_err(|e| format!("--cuda-memory-limit: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    load.cuda = cuda;
    let socket = socket.ok_or("--socket is required")?;
    let library = library.ok_or("--onnxruntime is required")?;
    let rt = runtime::load(&library).map_err(|e| e.to_string())?;
    eprintln!(
        "ettin-inferd: pid {} serving {} (ONNX Runtime {}, providers {:?})",
        std::process::id(),
        socket.display(),
        rt.version,
        rt.providers
    );
    serve(rt, ServerConfig { socket, load }).map_err(|e| format!("socket: {e}"))
}
