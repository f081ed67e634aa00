//! Engine errors become Postgres ERRORs with a SQLSTATE, detail and hint.

use ettin_engine::{EngineError, ErrorKind};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::MissingFile => PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
        ErrorKind::External => PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        ErrorKind::Unsupported => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        ErrorKind::TooLarge => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::Unavailable => PgSqlErrorCode::ERRCODE_CANNOT_CONNECT_NOW,
    }
}

/// What to do when the engine had no more specific advice.
fn default_hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidParameter => "check the function's arguments and the ettin.* settings",
        ErrorKind::MissingFile => "check ettin.model_dir, the model name and the model's files",
        ErrorKind::External => "check the model's files: copy them again, or re-export the model with tools/export_model.py",
        ErrorKind::Unsupported => "see the README for the model layouts and settings ettin supports",
        ErrorKind::TooLarge => "score fewer or shorter documents per call, or lower ettin.max_length",
        ErrorKind::Unavailable => "retry: the inference worker restarts by itself",
    }
}

/// Longest message, detail or hint an ERROR carries. Names and paths are already quoted at a
/// bounded length (`ettin_engine::quoted`); this is the backstop for text a library returned.
const MAX_ERROR_TEXT: usize = 2000;

fn bounded(text: String) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text;
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// Raise `error` as an ERROR; does not return.
pub fn raise(error: EngineError) -> ! {
    let hint = error
        .hint
        .unwrap_or_else(|| default_hint(error.kind).to_owned());
    let mut report = ErrorReport::new(sqlstate(error.kind), bounded(error.message), "ettin")
        .set_hint(bounded(hint));
    if let Some(detail) = error.detail {
        report = report.set_detail(bounded(detail));
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

pub trait OrRaise<T> {
    /// The value, or the error raised as a Postgres ERROR.
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, EngineError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

/// Raise 42501 insufficient_privilege with a hint; does not return.
pub fn raise_insufficient_privilege(message: &str, hint: &str) -> ! {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message.to_owned(),
        "ettin",
    )
    .set_hint(hint)
    .report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}
