//! Device selection without a GPU: `cuda` is a clean error, `auto` runs on the CPU and says why.
//! (With a CUDA-enabled ONNX Runtime these paths differ; the GPU check script covers that.)

mod common;

use common::*;
use ettin_engine::{BatchLimits, DeviceChoice, ErrorKind, LoadOptions, Model};

fn options(device: DeviceChoice) -> LoadOptions {
    LoadOptions {
        intra_threads: 1,
        device,
        ..Default::default()
    }
}

#[test]
fn cuda_without_the_provider_is_an_error_and_auto_falls_back_to_cpu() {
    let rt = runtime();
    assert!(
        !rt.providers.iter().any(|p| p == "CUDAExecutionProvider"),
        "these tests expect the CPU-only ONNX Runtime: {:?}",
        rt.providers
    );
    let dir = fixture_dir("modular");
    let Err(e) = Model::load(rt, &dir, options(DeviceChoice::Cuda)) else {
        panic!("ettin.device = cuda loaded without a CUDA provider")
    };
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains("no CUDA execution provider"),
        "{}",
        e.message
    );
    assert!(e
        .hint
        .as_deref()
        .unwrap_or("")
        .contains("onnxruntime_library"));

    let auto = Model::load(rt, &dir, options(DeviceChoice::Auto)).unwrap();
    assert_eq!(auto.device(), "cpu");
    assert!(
        auto.device_reason().contains("no CUDA provider"),
        "{}",
        auto.device_reason()
    );
    assert_eq!(auto.default_batch_tokens(), 1024);
    let limits = |max_tokens| BatchLimits {
        max_pairs: 32,
        max_tokens,
        max_memory: 0,
    };
    assert_eq!(
        auto.batch_limits(limits(0)),
        limits(1024),
        "0 means the device default"
    );
    assert_eq!(auto.batch_limits(limits(4096)), limits(4096));
    let cpu = Model::load(rt, &dir, options(DeviceChoice::Cpu)).unwrap();
    assert_eq!(cpu.device(), "cpu");
    let pairs = [("free software", "the GNU license"), ("a", "x")];
    assert_eq!(
        auto.score(&pairs, &common::options(512), &mut || {})
            .unwrap(),
        cpu.score(&pairs, &common::options(512), &mut || {})
            .unwrap()
    );
}
