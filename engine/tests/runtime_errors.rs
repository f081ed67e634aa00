//! Loading ONNX Runtime from a bad path is a clean error. This file is its own test process and
//! never loads a real ONNX Runtime, so every call here goes through the checks.

use std::path::Path;

use ettin_engine::runtime;
use ettin_engine::ErrorKind;

#[test]
fn missing_relative_and_foreign_libraries_are_refused() {
    let e = runtime::load(Path::new("/nonexistent/libonnxruntime.so.1.31.1"))
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::MissingFile);
    assert!(
        e.message.contains("/nonexistent/libonnxruntime.so.1.31.1"),
        "{e}"
    );
    assert!(e.hint.is_some());

    let e = runtime::load(Path::new("libonnxruntime.so")).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);

    // A real shared library that is not ONNX Runtime.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libc.so.6");
    let e = runtime::load(Path::new(libc)).err().unwrap();
    assert_eq!(e.kind, ErrorKind::External);
    assert!(e.message.contains("OrtGetApiBase"), "{e}");

    // A file that is not a library at all.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), b"not an ELF file").unwrap();
    let e = runtime::load(tmp.path()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::External);
    assert!(runtime::loaded().is_none());
}
