//! ONNX Runtime, loaded at run time from a shared library (`ort`'s `load-dynamic`).
//!
//! One environment per process, created on first use (never at library load: threads created
//! before Postgres forks would not exist in the child). Loading is checked step by step so that a
//! missing file, a foreign library or an old ONNX Runtime is a clean error, never an abort.

use std::ffi::{c_char, c_int, CStr};
use std::path::{Path, PathBuf};

use once_cell::sync::OnceCell;
use parking_lot::Mutex;

use crate::error::{EngineError, Result};
use crate::quote::quoted;

/// The ONNX Runtime minor version our `ort` binding speaks (`api-31`). Older libraries lack
/// functions the binding calls, which has been seen to abort the process; they are refused.
pub const REQUIRED_MINOR: u32 = ort::MINOR_VERSION;

/// The library file name `make install` puts next to the extension.
pub const DEFAULT_LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";

pub struct Runtime {
    pub library: PathBuf,
    pub version: String,
    pub providers: Vec<String>,
    pub(crate) environment: ort::environment::Environment,
}

static RUNTIME: OnceCell<Runtime> = OnceCell::new();
// Serialises first loads; a failed load is not cached so a fixed setting works without reconnect.
static LOAD_LOCK: Mutex<()> = parking_lot::const_mutex(());

/// The process-wide runtime if it is already loaded.
pub fn loaded() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Load ONNX Runtime from `library` (once per process) and return it. A later call with another
/// path returns the runtime already loaded: a process can hold only one ONNX Runtime.
pub fn load(library: &Path) -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _guard = LOAD_LOCK.lock();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let runtime = load_uncached(library)?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

fn load_error(library: &Path, what: &str) -> EngineError {
    EngineError::external(format!("could not load ONNX Runtime from {}: {what}", quoted(library.display()))).with_hint(
        "install ONNX Runtime 1.31 or newer there (`make install` does), or point the server setting \
         ettin.onnxruntime_library at a libonnxruntime.so of version >= 1.31",
    )
}

fn load_uncached(library: &Path) -> Result<Runtime> {
    if !library.is_absolute() {
        return Err(EngineError::invalid(format!(
            "ONNX Runtime library path {} is not absolute",
            quoted(library.display())
        ))
        .with_hint("set ettin.onnxruntime_library to an absolute path"));
    }
    if !library.is_file() {
        return Err(EngineError::missing(format!("ONNX Runtime library {} does not exist", quoted(library.display())))
            .with_hint(
                "run `make install` (it installs libonnxruntime.so.1.31.1 next to the extension) or set \
                 ettin.onnxruntime_library in postgresql.conf",
            ));
    }
    let version = library_version(library)?;
    let minor = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    if minor < REQUIRED_MINOR {
        return Err(EngineError::unsupported(format!(
            "ONNX Runtime at {} is version {version}; ettin needs 1.{REQUIRED_MINOR} or newer",
            quoted(library.display())
        ))
        .with_hint(
            "install ONNX Runtime 1.31.1 (`make install`) or point ettin.onnxruntime_library at it",
        ));
    }
    ort::init_from(library).map_err(|e| load_error(library, &e.to_string()))?;
    let environment = crate::signals::with_signals_blocked(|| {
        ort::init().with_name("ettin").with_telemetry(false).build()
    })
    .map_err(|e| load_error(library, &e.to_string()))?;
    let providers = available_providers().map_err(|e| load_error(library, &e))?;
    Ok(Runtime {
        library: library.to_path_buf(),
        version,
        providers,
        environment,
    })
}

/// Read the version string of an ONNX Runtime library without handing it to `ort`, so an old
/// library is refused before any of its functions beyond `OrtGetApiBase` are called.
fn library_version(library: &Path) -> Result<String> {
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: loading a shared library runs its initialisers; that is the point of the setting.
    let lib = unsafe { libloading::Library::new(library) }
        .map_err(|e| load_error(library, &e.to_string()))?;
    // SAFETY: the symbol type is the documented C signature of OrtGetApiBase.
    let getter: libloading::Symbol<GetApiBase> =
        unsafe { lib.get(b"OrtGetApiBase") }.map_err(|_| {
            load_error(
                library,
                "it does not export OrtGetApiBase (not an ONNX Runtime library)",
            )
        })?;
    // SAFETY: OrtGetApiBase takes no arguments and returns a static struct (or null).
    let base = unsafe { getter() };
    if base.is_null() {
        return Err(load_error(library, "OrtGetApiBase returned null"));
    }
    // SAFETY: base is non-null and points to the library's static OrtApiBase.
    let raw = unsafe { ((*base).GetVersionString)() };
    if raw.is_null() {
        return Err(load_error(library, "GetVersionString returned null"));
    }
    // SAFETY: ONNX Runtime returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(raw) }
        .to_string_lossy()
        .into_owned();
    // Keep the library mapped: `ort` opens the same file next, and unmapping and remapping
    // it would run its initialisers twice.
    std::mem::forget(lib);
    Ok(version)
}

fn available_providers() -> std::result::Result<Vec<String>, String> {
    let api = ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut count: c_int = 0;
    // SAFETY: documented C API; out-pointers are valid locals.
    let status = unsafe { (api.GetAvailableProviders)(&mut list, &mut count) };
    check_status(api, status)?;
    if list.is_null() {
        return Ok(Vec::new());
    }
    let names = (0..count as isize)
        // SAFETY: ONNX Runtime returned `count` valid C strings in `list`.
        .map(|i| {
            unsafe { CStr::from_ptr(*list.offset(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // SAFETY: releasing the list ONNX Runtime allocated, with its length.
    let status = unsafe { (api.ReleaseAvailableProviders)(list, count) };
    check_status(api, status)?;
    Ok(names)
}

fn check_status(
    api: &ort::sys::OrtApi,
    status: ort::sys::OrtStatusPtr,
) -> std::result::Result<(), String> {
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: non-null status from the API; read its message, then free it once.
    let message = unsafe { CStr::from_ptr((api.GetErrorMessage)(status.0)) }
        .to_string_lossy()
        .into_owned();
    unsafe { (api.ReleaseStatus)(status.0) };
    Err(message)
}
