//! User-supplied names and paths as error messages quote them: in double quotes and bounded, so
//! a 100,000-character model name does not come back whole in the ERROR and the server log.

use std::fmt::Display;

/// Most characters of a value an error message quotes; longer ones keep their start and end.
pub const MAX_QUOTED_CHARS: usize = 120;

/// `value` in double quotes; past [`MAX_QUOTED_CHARS`] its middle is replaced by an ellipsis,
/// keeping the start (the model name's organisation) and the end (a path's file name).
pub fn quoted(value: impl Display) -> String {
    let text = value.to_string();
    let count = text.chars().count();
    if count <= MAX_QUOTED_CHARS {
        return format!("\"{text}\"");
    }
    let keep = (MAX_QUOTED_CHARS - 1) / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(count - keep).collect();
    format!("\"{head}…{tail}\" ({count} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quoted("org/name"), "\"org/name\"");
        assert_eq!(quoted(""), "\"\"");
    }

    #[test]
    fn long_values_keep_start_and_end() {
        let long = format!("start{}end.onnx", "x".repeat(100_000));
        let q = quoted(&long);
        assert!(q.chars().count() < MAX_QUOTED_CHARS + 40, "{}", q.len());
        assert!(q.starts_with("\"startxx"));
        assert!(q.contains("xxend.onnx\""));
        assert!(q.contains('…'));
        assert!(q.ends_with(&format!("({} characters)", long.chars().count())));
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let q = quoted("日本語".repeat(1000));
        assert!(q.contains('…'));
        assert!(q.chars().count() < MAX_QUOTED_CHARS + 40);
    }
}
