//! The shared inference service (`ettin.inference = shared`): one process, `ettin-inferd`, owns
//! the models and scores requests from every backend over a Unix socket. Pairs from different
//! requests for the same model wait in one queue and are batched together under the token budget,
//! so eight connections reranking 20 documents each fill batches like one connection with 160.
//!
//! Wire format: each message is a 4-byte big-endian length and that many bytes of JSON. A client
//! sends one request per connection and reads one response; closing the connection early cancels
//! the request (its queued pairs are dropped).
//!
//! Embedding requests run on the worker's copy of the model too, each in its own connection's
//! thread, a chunk of texts at a time (batched within the chunk, not across requests); a client
//! that goes away stops its request at the next chunk.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::batch::BatchLimits;
use crate::error::{EngineError, ErrorKind, Result};
use crate::model::Model;
use crate::options::{EmbedOptions, ScoreOptions};
use crate::registry::{self, Loaded};
use crate::runtime::Runtime;
use crate::session::LoadOptions;
use crate::status::ModelStatus;
use crate::tokenize::EncodedPair;

/// How many batches' worth of the oldest waiting pairs the batcher sorts by length.
const WINDOW_BATCHES: usize = 8;

/// Texts of one embedding request the worker embeds between two checks that its client is there.
const EMBED_CHUNK: usize = 256;

/// Largest message either side accepts (a request of 10 000 long documents fits).
const MAX_MESSAGE: usize = 256 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Score(ScoreRequest),
    Embed(EmbedRequest),
    Status,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EmbedRequest {
    pub name: String,
    pub dir: PathBuf,
    pub onnx_file: Option<String>,
    pub options: EmbedOptions,
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ScoreRequest {
    /// How the backend named the model (for status output) and its resolved directory.
    pub name: String,
    pub dir: PathBuf,
    pub onnx_file: Option<String>,
    /// The backend's settings for this call (a max_tokens of 0: the worker's device default).
    pub options: ScoreOptions,
    pub query: String,
    pub documents: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Scores(Vec<f32>),
    Embeddings(Vec<Vec<f32>>),
    Error(EngineError),
    Status(WorkerStatus),
}

/// The worker's state, for ettin_info() and ettin_models().
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub pid: u32,
    /// Unix time the worker started.
    pub started: u64,
    pub requests: u64,
    pub active_requests: usize,
    pub cancelled_requests: u64,
    pub onnxruntime: String,
    pub models: Vec<ModelStatus>,
}

fn frame<T: Serialize>(message: &T) -> std::io::Result<Vec<u8>> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

pub fn write_message<T: Serialize>(stream: &mut UnixStream, message: &T) -> std::io::Result<()> {
    stream.write_all(&frame(message)?)
}

pub fn read_message<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::other(format!(
            "message of {len} bytes is too large"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

// ---------------------------------------------------------------------------------------------
// Client (used by backends)

fn unavailable(socket: &Path, what: impl std::fmt::Display) -> EngineError {
    EngineError::new(
        ErrorKind::Unavailable,
        format!("the ettin inference worker is not available: {what}"),
    )
    .with_detail(format!("socket: {}", socket.display()))
    .with_hint(
        "the worker restarts by itself within seconds: retry; if it persists, check the server log and \
         that shared_preload_libraries includes 'ettin'",
    )
}

/// Send one request and wait for its response. `between` runs every 100 ms while waiting (the
/// SQL layer checks for cancel there: an ERROR unwinds through here, dropping the connection, and
/// the worker drops the request's queued pairs).
pub fn call(socket: &Path, request: &Request, between: &mut dyn FnMut()) -> Result<Response> {
    let message = frame(request)
        .map_err(|e| EngineError::external("could not encode the request").with_detail(e))?;
    if message.len() > MAX_MESSAGE + 4 {
        return Err(EngineError::new(
            ErrorKind::TooLarge,
            format!(
                "this call's documents take {} MB; the inference worker accepts at most {} MB per call",
                message.len() >> 20,
                MAX_MESSAGE >> 20
            ),
        )
        .with_hint("score fewer or shorter documents per call"));
    }
    let mut stream = UnixStream::connect(socket).map_err(|e| unavailable(socket, e))?;
    stream
        .write_all(&message)
        .map_err(|e| unavailable(socket, e))?;
    loop {
        between();
        let mut fds = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&stream),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on a socket we own.
        let ready = unsafe { libc::poll(&mut fds, 1, 100) };
        if ready > 0 {
            break;
        }
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(unavailable(socket, err));
            }
        }
    }
    read_message(&mut stream).map_err(|e| {
        unavailable(
            socket,
            format!("the connection was lost while the request was in flight ({e})"),
        )
    })
}

/// Score through the worker: the same results as `Model::score` in this process.
pub fn score(socket: &Path, request: ScoreRequest, between: &mut dyn FnMut()) -> Result<Vec<f32>> {
    let expected = request.documents.len();
    match call(socket, &Request::Score(request), between)? {
        Response::Scores(scores) if scores.len() == expected => Ok(scores),
        Response::Error(e) => Err(e),
        other => Err(EngineError::external(format!(
            "the inference worker answered with something unexpected: {other:?}"
        ))),
    }
}

/// Embed through the worker: the same vectors as `Loaded::embed` in this process.
pub fn embed(
    socket: &Path,
    request: EmbedRequest,
    between: &mut dyn FnMut(),
) -> Result<Vec<Vec<f32>>> {
    let expected = request.texts.len();
    match call(socket, &Request::Embed(request), between)? {
        Response::Embeddings(vectors) if vectors.len() == expected => Ok(vectors),
        Response::Error(e) => Err(e),
        other => Err(EngineError::external(format!(
            "the inference worker answered with something unexpected: {other:?}"
        ))),
    }
}

pub fn status(socket: &Path) -> Result<WorkerStatus> {
    match call(socket, &Request::Status, &mut || {})? {
        Response::Status(v) => Ok(v),
        other => Err(EngineError::external(format!(
            "the inference worker answered with something unexpected: {other:?}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Server (ettin-inferd)

/// What the worker process is started with (by the supervisor, from server settings).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub socket: PathBuf,
    pub load: LoadOptions,
}

struct JobState {
    scores: Vec<f32>,
    remaining: usize,
    error: Option<EngineError>,
}

/// One score request: its results fill in as its pairs are scored, in whichever batches.
struct Job {
    state: Mutex<JobState>,
    done: Condvar,
    cancelled: AtomicBool,
    activation: crate::head::Activation,
}

struct Item {
    job: Arc<Job>,
    index: usize,
    pair: EncodedPair,
}

/// One model's queue of pairs waiting for inference, shared by every request for that model.
struct ModelQueue {
    model: Arc<Model>,
    queue: Mutex<VecDeque<Item>>,
    ready: Condvar,
    limits: Mutex<BatchLimits>,
    queued_pairs: AtomicUsize,
}

struct Server {
    config: ServerConfig,
    runtime: &'static Runtime,
    /// One queue per loaded model (the models themselves live in the registry).
    queues: Mutex<Vec<Arc<ModelQueue>>>,
    started: std::time::SystemTime,
    requests: AtomicU64,
    active: AtomicUsize,
    cancelled: AtomicU64,
}

/// Run the worker until the process is killed: accept connections, one thread each; one
/// inference thread per loaded model.
pub fn serve(runtime: &'static Runtime, config: ServerConfig) -> std::io::Result<()> {
    // A stale socket from a previous worker would make bind fail; the supervisor guarantees one
    // worker at a time.
    let _ = std::fs::remove_file(&config.socket);
    let listener = UnixListener::bind(&config.socket)?;
    let server = Arc::new(Server {
        config,
        runtime,
        queues: Mutex::new(Vec::new()),
        started: std::time::SystemTime::now(),
        requests: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        cancelled: AtomicU64::new(0),
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.handle(stream));
    }
    Ok(())
}

impl Server {
    fn handle(&self, mut stream: UnixStream) {
        let request: Request = match read_message(&mut stream) {
            Ok(r) => r,
            Err(_) => return,
        };
        let response = match request {
            Request::Status => Response::Status(self.status()),
            Request::Embed(req) => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.active.fetch_add(1, Ordering::Relaxed);
                let r = self.embed(&stream, req);
                self.active.fetch_sub(1, Ordering::Relaxed);
                match r {
                    Ok(Some(vectors)) => Response::Embeddings(vectors),
                    Ok(None) => return, // cancelled: the client is gone
                    Err(e) => Response::Error(e),
                }
            }
            Request::Score(req) => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.active.fetch_add(1, Ordering::Relaxed);
                let r = self.score(&mut stream, req);
                self.active.fetch_sub(1, Ordering::Relaxed);
                match r {
                    Ok(Some(scores)) => Response::Scores(scores),
                    Ok(None) => return, // cancelled: the client is gone
                    Err(e) => Response::Error(e),
                }
            }
        };
        let _ = write_message(&mut stream, &response);
    }

    /// The worker's copy of a model, loading it on first use.
    fn load(&self, name: &str, dir: &Path, onnx_file: Option<String>) -> Result<Loaded> {
        let options = LoadOptions {
            onnx_file,
            ..self.config.load.clone()
        };
        registry::get_or_load(
            || Ok(self.runtime),
            name,
            dir,
            options,
            |m| {
                eprintln!(
                    "ettin-inferd: loaded {}: {}",
                    crate::quoted(name),
                    m.describe_load()
                )
            },
        )
    }

    /// Embed one request's texts on the worker's copy of the model, EMBED_CHUNK texts at a time;
    /// None when the client went away (checked between chunks).
    fn embed(&self, stream: &UnixStream, req: EmbedRequest) -> Result<Option<Vec<Vec<f32>>>> {
        let model = self.load(&req.name, &req.dir, req.onnx_file.clone())?;
        let texts: Vec<&str> = req.texts.iter().map(String::as_str).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(EMBED_CHUNK) {
            if client_gone(stream) {
                self.cancelled.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            vectors.extend(model.embed(chunk, &req.options, &mut || {})?);
        }
        Ok(Some(vectors))
    }

    /// The model's queue (and inference thread), loading the model on first use.
    fn queue_for(&self, req: &ScoreRequest) -> Result<Arc<ModelQueue>> {
        let loaded = self.load(&req.name, &req.dir, req.onnx_file.clone())?;
        let model = Arc::clone(loaded.cross_encoder()?);
        let mut queues = self.queues.lock();
        if let Some(q) = queues.iter().find(|q| Arc::ptr_eq(&q.model, &model)) {
            return Ok(Arc::clone(q));
        }
        let limits = model.batch_limits(BatchLimits {
            max_pairs: 32,
            max_tokens: 0,
            max_memory: 0,
        });
        let queue = Arc::new(ModelQueue {
            model,
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            limits: Mutex::new(limits),
            queued_pairs: AtomicUsize::new(0),
        });
        let worker = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("ettin-infer".into())
            .spawn(move || worker.run())
            .map_err(|e| {
                EngineError::external("could not start an inference thread").with_detail(e)
            })?;
        queues.push(Arc::clone(&queue));
        Ok(queue)
    }

    /// Queue the request's pairs and wait for their scores; None when the client went away.
    fn score(&self, stream: &mut UnixStream, req: ScoreRequest) -> Result<Option<Vec<f32>>> {
        let started = Instant::now();
        let queue = self.queue_for(&req)?;
        let model = &queue.model;
        let options = req.options;
        let pairs: Vec<(&str, &str)> = req
            .documents
            .iter()
            .map(|d| (req.query.as_str(), d.as_str()))
            .collect();
        if pairs.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let encoded = model.encode(&pairs, &options, &mut || {})?;
        model.check_batch_memory(&encoded, options.limits)?;
        let tokens: usize = encoded.iter().map(|e| e.ids.len()).sum();
        let job = Arc::new(Job {
            state: Mutex::new(JobState {
                scores: vec![0.0; pairs.len()],
                remaining: pairs.len(),
                error: None,
            }),
            done: Condvar::new(),
            cancelled: AtomicBool::new(false),
            activation: model.activation(options.activation),
        });
        {
            *queue.limits.lock() = model.batch_limits(options.limits);
            let mut q = queue.queue.lock();
            for (index, pair) in encoded.into_iter().enumerate() {
                q.push_back(Item {
                    job: Arc::clone(&job),
                    index,
                    pair,
                });
            }
            queue.queued_pairs.fetch_add(pairs.len(), Ordering::Relaxed);
            queue.ready.notify_one();
        }
        let mut state = job.state.lock();
        loop {
            if let Some(e) = state.error.take() {
                job.cancelled.store(true, Ordering::Relaxed);
                return Err(e);
            }
            if state.remaining == 0 {
                // Batches are shared between requests; the inference thread counts them.
                model.count_call(pairs.len(), tokens, 0, started);
                return Ok(Some(std::mem::take(&mut state.scores)));
            }
            job.done.wait_for(&mut state, Duration::from_millis(100));
            if client_gone(stream) {
                job.cancelled.store(true, Ordering::Relaxed);
                self.cancelled.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
        }
    }

    fn status(&self) -> WorkerStatus {
        let queues = self.queues.lock();
        let models = registry::loaded_named()
            .into_iter()
            .map(|(name, loaded)| {
                let queued = match &loaded {
                    Loaded::Onnx(m) => queues
                        .iter()
                        .find(|q| Arc::ptr_eq(&q.model, m))
                        .map_or(0, |q| q.queued_pairs.load(Ordering::Relaxed)),
                    Loaded::Static(_) => 0,
                };
                ModelStatus {
                    queued_pairs: queued,
                    ..loaded.status(&name)
                }
            })
            .collect();
        WorkerStatus {
            pid: std::process::id(),
            started: self
                .started
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            requests: self.requests.load(Ordering::Relaxed),
            active_requests: self.active.load(Ordering::Relaxed),
            cancelled_requests: self.cancelled.load(Ordering::Relaxed),
            onnxruntime: self.runtime.version.clone(),
            models,
        }
    }
}

/// True when the client closed its end (a cancelled statement drops its connection).
fn client_gone(stream: &UnixStream) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: a non-blocking peek of at most one byte into a local buffer.
    let n = unsafe {
        libc::recv(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0
}

impl ModelQueue {
    /// The inference loop: take the longest waiting pairs that fit one batch, run, hand out.
    fn run(&self) {
        loop {
            let batch = self.next_batch();
            let pairs: Vec<&EncodedPair> = batch.iter().map(|i| &i.pair).collect();
            let result = self.model.infer(&pairs);
            self.model.counters.batches.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(logits) => {
                    for (item, logit) in batch.iter().zip(logits) {
                        let mut state = item.job.state.lock();
                        state.scores[item.index] = item.job.activation.apply(logit);
                        state.remaining -= 1;
                        if state.remaining == 0 {
                            item.job.done.notify_all();
                        }
                    }
                }
                Err(e) => {
                    for item in &batch {
                        let mut state = item.job.state.lock();
                        state.error.get_or_insert_with(|| e.clone());
                        item.job.cancelled.store(true, Ordering::Relaxed);
                        item.job.done.notify_all();
                    }
                }
            }
        }
    }

    fn next_batch(&self) -> Vec<Item> {
        let mut q = self.queue.lock();
        loop {
            // Pairs of cancelled or failed requests are dropped, not scored.
            let before = q.len();
            q.retain(|i| !i.job.cancelled.load(Ordering::Relaxed));
            self.queued_pairs
                .fetch_sub(before - q.len(), Ordering::Relaxed);
            if !q.is_empty() {
                break;
            }
            self.ready.wait(&mut q);
        }
        let limits = *self.limits.lock();
        let max_pairs = limits.max_pairs.max(1);
        // Longest first within a window of the oldest waiting pairs, whichever request they
        // belong to: little padding, as in Model::score, and no pair waits behind newer ones
        // for more than a few batches.
        let window = q.len().min(WINDOW_BATCHES * max_pairs);
        let mut order: Vec<usize> = (0..window).collect();
        order.sort_by(|a, b| q[*b].pair.ids.len().cmp(&q[*a].pair.ids.len()));
        let padded = q[order[0]].pair.ids.len().max(1);
        let mut take = (limits.max_tokens / padded).clamp(1, max_pairs).min(window);
        // Fewer pairs while the batch's activations would pass the memory budget (one pair
        // always runs: requests over the budget on their own were refused when they came in).
        while take > 1
            && limits.max_memory > 0
            && self.model.batch_bytes(take, padded) > limits.max_memory
        {
            take -= 1;
        }
        let mut chosen: Vec<usize> = order[..take].to_vec();
        // Remove from the back so earlier indices stay valid; then longest first again.
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        let mut batch: Vec<Item> = chosen.into_iter().filter_map(|i| q.remove(i)).collect();
        batch.sort_by(|a, b| b.pair.ids.len().cmp(&a.pair.ids.len()));
        self.queued_pairs.fetch_sub(batch.len(), Ordering::Relaxed);
        batch
    }
}
