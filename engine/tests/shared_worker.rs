//! The shared inference worker in-process: a request over its socket scores exactly like
//! Model::score, errors keep their kind, and concurrent requests are all answered.

mod common;

use common::*;
use ettin_engine::shared::{self, ScoreRequest, ServerConfig};
use ettin_engine::{BatchLimits, ErrorKind, LoadOptions, ScoreOptions};

fn request(dir: &std::path::Path, docs: &[&str]) -> ScoreRequest {
    ScoreRequest {
        name: "modular".into(),
        dir: dir.to_path_buf(),
        onnx_file: None,
        options: ScoreOptions {
            limits: BatchLimits {
                max_pairs: 32,
                max_tokens: 0,
                max_memory: 0,
            },
            ..options(512)
        },
        query: "free software".into(),
        documents: docs.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn the_worker_scores_like_the_engine_and_reports_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("worker.sock");
    let config = ServerConfig {
        socket: socket.clone(),
        load: LoadOptions {
            intra_threads: 1,
            ..Default::default()
        },
    };
    let rt = runtime();
    std::thread::spawn(move || shared::serve(rt, config));
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dir = fixture_dir("modular");
    let docs = [
        "the GNU General Public License",
        "bananas",
        "free software is free",
        "x",
    ];
    let expected = load(&dir)
        .score(
            &docs
                .iter()
                .map(|d| ("free software", *d))
                .collect::<Vec<_>>(),
            &options(512),
            &mut || {},
        )
        .unwrap();
    // Several clients at once: their pairs may share batches; each gets its own scores back.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (socket, dir) = (socket.clone(), dir.clone());
            std::thread::spawn(move || shared::score(&socket, request(&dir, &docs), &mut || {}))
        })
        .collect();
    for h in handles {
        let got = h.join().unwrap().unwrap();
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g - e).abs() < 1e-5,
                "worker {got:?} vs engine {expected:?}"
            );
        }
    }
    let e = shared::score(
        &socket,
        request(&tmp.path().join("nope"), &docs),
        &mut || {},
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingFile, "{}", e.message);
    let status = shared::status(&socket).unwrap();
    assert_eq!(status.requests, 5);
    assert_eq!(status.models.len(), 1);
    assert_eq!(status.models[0].counters.pairs, 16);
    assert_eq!(status.models[0].queued_pairs, 0);

    let missing = tmp.path().join("no-worker.sock");
    let e = shared::score(&missing, request(&dir, &docs), &mut || {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
}
