//! One error type for the whole engine. Each variant is a *kind* the SQL layer maps to a SQLSTATE;
//! every error carries a message (what failed, naming the model and file), an optional detail (the
//! underlying library's words) and a hint (what the user can do about it).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// A bad argument or setting value (model name with `..`, unknown activation, …).
    InvalidParameter,
    /// A model directory or a file the layout needs does not exist.
    MissingFile,
    /// Model files that exist but cannot be used (malformed JSON, wrong shapes, bad ONNX),
    /// or a failure inside ONNX Runtime or the tokenizer.
    External,
    /// Something this build or this library cannot do (unknown module type, provider missing).
    Unsupported,
    /// A request too big to run (memory guard).
    TooLarge,
    /// The shared inference worker is not reachable or went away mid-request.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MissingFile, message)
    }
    pub fn external(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::External, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for EngineError {}

pub type Result<T> = std::result::Result<T, EngineError>;
