//! Where things are on the server: `$libdir`, the ONNX Runtime library, the shared inference
//! worker's socket. Every SQL surface and background worker reads them from here.

use std::ffi::CStr;
use std::path::PathBuf;

use ettin_engine::runtime::DEFAULT_LIBRARY_NAME;
use pgrx::pg_sys;

use crate::guc;

/// `$libdir` of this server, where `make install` puts the ONNX Runtime library.
pub fn pkglib_dir() -> PathBuf {
    // SAFETY: pkglib_path is a NUL-terminated path Postgres fills at startup and never changes.
    let raw = unsafe { CStr::from_ptr((&raw const pg_sys::pkglib_path).cast()) };
    PathBuf::from(raw.to_string_lossy().into_owned())
}

/// `ettin.onnxruntime_library`, with `$libdir/` expanded; empty means the library `make install`
/// puts in `$libdir`.
pub fn onnxruntime_library_path() -> PathBuf {
    let configured = guc::string(&guc::ONNXRUNTIME_LIBRARY);
    if configured.is_empty() {
        pkglib_dir().join(DEFAULT_LIBRARY_NAME)
    } else if let Some(rest) = configured.strip_prefix("$libdir/") {
        pkglib_dir().join(rest)
    } else {
        PathBuf::from(configured)
    }
}

/// The shared inference worker's socket, relative to the data directory (every backend's
/// working directory): only the server's OS user can reach it, and no path length limit applies.
pub const INFERENCE_SOCKET: &str = "ettin_inference.sock";

pub fn inference_socket() -> PathBuf {
    PathBuf::from(INFERENCE_SOCKET)
}
