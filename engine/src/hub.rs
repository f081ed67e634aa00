//! Models from the Hugging Face Hub (or a mirror): download only the files the layout needs into
//! `<model_dir>/.hub-cache` with the hf-hub crate (atomic temp file + rename, per-blob lock, the
//! Hub's commit/ETag/size headers), then point `<model_dir>/<name>` at the downloaded snapshot.
//! A per-model lock file makes concurrent first uses from several backends download once.
//! The scoring path never calls this: it produces a directory; the registry loads directories.

use std::fs::File;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Repo, RepoType};
use serde_json::Value;

use crate::error::{EngineError, ErrorKind, Result};
use crate::files::resolve_model_dir;
use crate::quote::quoted;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Where hf-hub keeps blobs and snapshots, inside the model directory.
const CACHE_DIR: &str = ".hub-cache";
const LOCK_DIR: &str = ".locks";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for another backend's download of the same model.
const LOCK_WAIT: Duration = Duration::from_secs(3600);

/// `org/name` or `org/name@revision` split into the repository and its revision.
pub fn parse_model_name(name: &str) -> (&str, &str) {
    match name.split_once('@') {
        Some((repo, rev)) if !rev.is_empty() => (repo, rev),
        _ => (name.trim_end_matches('@'), "main"),
    }
}

/// Whether `name` has the shape of a Hub model id (`org/name`, optionally `@revision`).
pub fn is_hub_id(name: &str) -> bool {
    let parts: Vec<&str> = parse_model_name(name)
        .0
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    // The Hub caps organisation and repository names at 96 characters each.
    parts.len() == 2 && parts.iter().all(|p| p.len() <= MAX_HUB_NAME_PART)
}

/// Longest organisation or repository name the Hub accepts.
const MAX_HUB_NAME_PART: usize = 96;

/// What the download calls back with: progress lines, and a chance to cancel between files.
pub trait DownloadObserver {
    fn progress(&mut self, message: &str);
    /// Called while waiting and between files; may unwind (the SQL layer's cancel check).
    fn check_cancel(&mut self);
}

/// True when `target` is a model ettin downloaded (a link into the Hub cache) that lacks
/// `onnx_file`: fetching the variant completes it. Directories placed by hand are never touched.
pub fn lacks_variant(target: &Path, onnx_file: Option<&str>) -> bool {
    let is_download = target
        .symlink_metadata()
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    matches!(onnx_file, Some(f) if is_download && !target.join(f).is_file())
}

/// Download `name` (`org/name[@rev]`) from `endpoint` into `model_dir` unless it is already there,
/// and return its directory. `onnx_file` (ettin.onnx_file) names the graph to fetch instead of
/// onnx/model.onnx; asking for a variant of a model downloaded before adds that file.
pub fn download(
    model_dir: &Path,
    endpoint: &str,
    name: &str,
    onnx_file: Option<&str>,
    observer: &mut dyn DownloadObserver,
) -> Result<PathBuf> {
    if let Some(file) = onnx_file {
        crate::files::check_onnx_file(file)?;
    }
    let target = resolve_model_dir(model_dir, name)?;
    let (repo_id, revision) = parse_model_name(name);
    if !is_hub_id(name) {
        return Err(EngineError::invalid(format!(
            "{name_q} is not a Hub model id",
            name_q = quoted(&name)
        ))
        .with_hint("name Hub models as org/name or org/name@revision"));
    }
    if target.is_dir() && !lacks_variant(&target, onnx_file) {
        return Ok(target);
    }
    std::fs::create_dir_all(model_dir.join(LOCK_DIR)).map_err(|e| io_error(model_dir, e))?;
    let lock_path = model_dir
        .join(LOCK_DIR)
        .join(format!("{}.lock", name.replace('/', "--")));
    let _lock = ModelLock::acquire(&lock_path, observer)?;
    if target.is_dir() && !lacks_variant(&target, onnx_file) {
        // Another backend finished the download while this one waited.
        return Ok(target);
    }
    check_reachable(endpoint)?;
    let api = ApiBuilder::new()
        .with_endpoint(endpoint.trim_end_matches('/').to_owned())
        .with_cache_dir(model_dir.join(CACHE_DIR))
        .with_progress(false)
        .with_retries(2)
        .build()
        .map_err(|e| hub_error(endpoint, repo_id, "", e))?;
    let repo = api.repo(Repo::with_revision(
        repo_id.to_owned(),
        RepoType::Model,
        revision.to_owned(),
    ));
    let files = needed_files(&repo, endpoint, repo_id, onnx_file, observer)?;
    let mut snapshot: Option<PathBuf> = None;
    let started = Instant::now();
    for (i, file) in files.iter().enumerate() {
        observer.check_cancel();
        let path = repo
            .get(file)
            .map_err(|e| hub_error(endpoint, repo_id, file, e))?;
        verify_etag(&path, repo_id, file)?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        observer.progress(&format!(
            "ettin: {repo_id}: {}/{} {file} ({size} bytes)",
            i + 1,
            files.len()
        ));
        if snapshot.is_none() {
            snapshot = snapshot_dir(&path, file);
        }
    }
    let snapshot =
        snapshot.ok_or_else(|| EngineError::external(format!("{repo_id}: no files downloaded")))?;
    link_atomically(&snapshot, &target)?;
    observer.progress(&format!(
        "ettin: {repo_id}@{revision} ready in {} ({:.1} s)",
        target.display(),
        started.elapsed().as_secs_f32()
    ));
    Ok(target)
}

/// The files ettin reads, derived from modules.json (modular rerankers, embedders, a
/// StaticEmbedding model) or the classic layout.
fn needed_files(
    repo: &ApiRepo,
    endpoint: &str,
    repo_id: &str,
    onnx_file: Option<&str>,
    observer: &mut dyn DownloadObserver,
) -> Result<Vec<String>> {
    let mut files: Vec<String> = Vec::new();
    let modules = optional(repo.get("modules.json"), endpoint, repo_id, "modules.json")?;
    observer.check_cancel();
    let mut static_embedding = false;
    if let Some(path) = &modules {
        files.push("modules.json".into());
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
        let modules: Value = serde_json::from_str(&text).map_err(|e| {
            EngineError::external(format!("{repo_id}: modules.json is not valid JSON"))
                .with_detail(e)
        })?;
        for module in modules.as_array().into_iter().flatten() {
            let dir = module.get("path").and_then(Value::as_str).unwrap_or("");
            let kind = module.get("type").and_then(Value::as_str).unwrap_or("");
            let in_dir = |file: &str| match dir {
                "" => file.to_owned(),
                dir => format!("{dir}/{file}"),
            };
            match kind.rsplit('.').next().unwrap_or("") {
                // A token-embedding table and its tokenizer: no ONNX graph, no config.json.
                "StaticEmbedding" => {
                    static_embedding = true;
                    files.push(in_dir("tokenizer.json"));
                    files.push(in_dir("model.safetensors"));
                }
                // The backbone's files are the root's (below); Normalize has no files (the Hub's
                // all-MiniLM-L6-v2 has no 2_Normalize folder at all).
                "Transformer" | "Normalize" => {}
                _ if dir.is_empty() => {}
                _ => {
                    files.push(in_dir("config.json"));
                    let weights = in_dir("model.safetensors");
                    if optional(repo.get(&weights), endpoint, repo_id, &weights)?.is_some() {
                        files.push(weights);
                    }
                }
            }
        }
    }
    if static_embedding {
        if optional(
            repo.get("config_sentence_transformers.json"),
            endpoint,
            repo_id,
            "config_sentence_transformers.json",
        )?
        .is_some()
        {
            files.push("config_sentence_transformers.json".into());
        }
        files.dedup();
        return Ok(files);
    }
    // config.json doubles as the existence check: every transformers repo has it.
    repo.get("config.json")
        .map_err(|e| hub_error(endpoint, repo_id, "config.json", e))?;
    files.push("config.json".into());
    files.push("tokenizer.json".into());
    for optional_file in [
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "tokenizer_config.json",
    ] {
        if optional(repo.get(optional_file), endpoint, repo_id, optional_file)?.is_some() {
            files.push(optional_file.into());
        }
    }
    if let Some(file) = onnx_file {
        if optional(repo.get(file), endpoint, repo_id, file)?.is_none() {
            return Err(EngineError::missing(format!(
                "{repo_id} on {endpoint} has no {file} (ettin.onnx_file)"
            ))
            .with_hint("reset ettin.onnx_file to use onnx/model.onnx, or export the variant with tools/export_model.py"));
        }
        files.push(file.into());
        return Ok(files);
    }
    let onnx = ["onnx/model.onnx", "model.onnx"]
        .into_iter()
        .find_map(|f| {
            optional(repo.get(f), endpoint, repo_id, f)
                .transpose()
                .map(|r| r.map(|_| f))
        })
        .transpose()?
        .ok_or_else(|| {
            EngineError::missing(format!(
                "{repo_id} on {endpoint} has no onnx/model.onnx or model.onnx"
            ))
            .with_hint(
                "export it with tools/export_model.py and place the result in ettin.model_dir",
            )
        })?;
    files.push(onnx.into());
    Ok(files)
}

/// `Ok(None)` for a 404, the error otherwise.
fn optional(
    result: std::result::Result<PathBuf, ApiError>,
    endpoint: &str,
    repo_id: &str,
    file: &str,
) -> Result<Option<PathBuf>> {
    match result {
        Ok(p) => Ok(Some(p)),
        Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(404, _)) => Ok(None),
        Err(e) => Err(hub_error(endpoint, repo_id, file, e)),
    }
}

fn hub_error(endpoint: &str, repo_id: &str, file: &str, e: ApiError) -> EngineError {
    let what = if file.is_empty() {
        repo_id.to_owned()
    } else {
        format!("{repo_id}/{file}")
    };
    match e {
        ApiError::RequestError(inner) => match *inner {
            ureq::Error::Status(code @ (401 | 403 | 404), _) => {
                EngineError::missing(format!("{what} was not found on {endpoint} (HTTP {code})"))
                    .with_hint("check the model name and revision; private repos are not supported")
            }
            ureq::Error::Status(code, _) => {
                EngineError::external(format!("{endpoint} answered HTTP {code} for {what}"))
                    .with_hint("try again later, or set ettin.hub_endpoint to a mirror")
            }
            ureq::Error::Transport(t) => {
                EngineError::external(format!("could not reach {endpoint} for {what}"))
                    .with_detail(t)
                    .with_hint(OFFLINE_HINT)
            }
        },
        ApiError::IoError(io) => io_error(Path::new(&what), io),
        other => EngineError::external(format!("downloading {what} from {endpoint} failed"))
            .with_detail(other),
    }
}

const OFFLINE_HINT: &str =
    "on a server without Hub access, copy the model directory into ettin.model_dir \
     (see the README's offline section), or set ettin.hub_endpoint to a reachable mirror";

fn io_error(path: &Path, e: std::io::Error) -> EngineError {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        EngineError::new(
            ErrorKind::TooLarge,
            format!("disk full while writing {}", quoted(path.display())),
        )
        .with_hint("free space on the file system of ettin.model_dir")
    } else {
        EngineError::external(format!("could not write {}", quoted(path.display())))
            .with_detail(e)
            .with_hint("the server's user must be able to write ettin.model_dir")
    }
}

/// Fail fast (seconds, not minutes) when the endpoint's host does not answer at all.
fn check_reachable(endpoint: &str) -> Result<()> {
    let unreachable = |why: String| {
        EngineError::external(format!("could not reach the model hub at {endpoint}"))
            .with_detail(why)
            .with_hint(OFFLINE_HINT)
    };
    let rest = endpoint
        .strip_prefix("https://")
        .map(|r| (r, 443))
        .or_else(|| endpoint.strip_prefix("http://").map(|r| (r, 80)));
    let Some((rest, default_port)) = rest else {
        return Err(EngineError::invalid(format!(
            "ettin.hub_endpoint {endpoint_q} is not an http(s) URL",
            endpoint_q = quoted(&endpoint)
        )));
    };
    let host_port = rest.split('/').next().unwrap_or(rest);
    let address = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(unreachable(last))
}

/// hf-hub names each blob after the Hub's ETag: the sha256 of the content for LFS files, the git
/// blob sha1 for small ones. Check the bytes against it, so a truncated or altered download is
/// never used (and is removed, so the next try downloads again).
fn verify_etag(snapshot_file: &Path, repo_id: &str, file: &str) -> Result<()> {
    let blob = std::fs::canonicalize(snapshot_file).map_err(|e| io_error(snapshot_file, e))?;
    let etag = blob
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = std::fs::read(&blob).map_err(|e| io_error(&blob, e))?;
    let actual = match etag.len() {
        64 => hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref()),
        40 => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
            ctx.update(format!("blob {}\0", bytes.len()).as_bytes());
            ctx.update(&bytes);
            hex(ctx.finish().as_ref())
        }
        _ => return Ok(()), // an ETag that is not a content hash: nothing to compare
    };
    if actual == etag {
        return Ok(());
    }
    let _ = std::fs::remove_file(snapshot_file);
    let _ = std::fs::remove_file(&blob);
    Err(EngineError::external(format!(
        "{repo_id}/{file}: the downloaded content does not match its ETag ({} bytes, digest {actual}, expected {etag})",
        bytes.len()
    ))
    .with_hint("the download was corrupted or cut short; run it again, or check the mirror"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The snapshot directory a downloaded file lives in (hf-hub returns snapshots/<commit>/<file>).
fn snapshot_dir(path: &Path, file: &str) -> Option<PathBuf> {
    let mut dir = path.to_path_buf();
    for _ in Path::new(file).components() {
        dir = dir.parent()?.to_path_buf();
    }
    Some(dir)
}

/// Make `target` a symlink to `snapshot`, atomically (temp link + rename): a reader sees either
/// no model or the whole model.
fn link_atomically(snapshot: &Path, target: &Path) -> Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| EngineError::invalid("model path has no parent"))?;
    std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(snapshot, &tmp).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, target).map_err(|e| io_error(target, e))
}

/// An exclusive flock on a per-model lock file, released on drop.
struct ModelLock(File);

impl ModelLock {
    fn acquire(path: &Path, observer: &mut dyn DownloadObserver) -> Result<ModelLock> {
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        let started = Instant::now();
        let mut told = false;
        loop {
            // SAFETY: flock on a file descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(ModelLock(file));
            }
            if !told {
                observer
                    .progress("ettin: another backend is downloading this model; waiting for it");
                told = true;
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(EngineError::external(format!(
                    "timed out waiting for the download lock {}",
                    quoted(path.display())
                )));
            }
            observer.check_cancel();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ModelLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in acquire.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_split_into_repo_and_revision() {
        assert_eq!(parse_model_name("org/name"), ("org/name", "main"));
        assert_eq!(parse_model_name("org/name@v1.2"), ("org/name", "v1.2"));
        assert_eq!(parse_model_name("org/name@"), ("org/name", "main"));
        assert!(is_hub_id("org/name@v1") && !is_hub_id("local-model") && !is_hub_id("a/b/c"));
    }

    #[test]
    fn snapshot_dir_strips_the_file_path() {
        let p = Path::new("/m/.hub-cache/models--a--b/snapshots/abc/onnx/model.onnx");
        assert_eq!(
            snapshot_dir(p, "onnx/model.onnx").unwrap(),
            Path::new("/m/.hub-cache/models--a--b/snapshots/abc")
        );
    }

    #[test]
    fn downloads_are_checked_against_sha256_and_git_sha1_etags() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"hello\n";
        // sha256("hello\n") and git's blob sha1 of the same content
        let sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let git_sha1 = "ce013625030ba8dba906f756967f9e9ca394464a";
        for etag in [sha256, git_sha1] {
            let blob = dir.path().join(etag);
            std::fs::write(&blob, content).unwrap();
            let link = dir.path().join(format!("link-{etag}"));
            std::os::unix::fs::symlink(&blob, &link).unwrap();
            verify_etag(&link, "a/b", "f").unwrap();
        }
        let bad = dir.path().join(sha256.replace('5', "6"));
        std::fs::write(&bad, content).unwrap();
        let e = verify_etag(&bad, "a/b", "f").unwrap_err();
        assert!(e.message.contains("does not match its ETag"), "{e}");
        assert!(!bad.exists(), "a corrupted blob is removed");
    }

    #[test]
    fn unreachable_endpoints_fail_fast() {
        let started = Instant::now();
        let e = check_reachable("http://127.0.0.1:9").unwrap_err();
        assert!(e.message.contains("could not reach"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            check_reachable("ftp://x").unwrap_err().kind,
            ErrorKind::InvalidParameter
        );
    }
}
