//! Results of recent calls, so that one statement that evaluates the same call twice scores once.
//!
//! Postgres evaluates a STABLE function whose arguments are constants at plan time too (the row
//! estimate of `unnest(rerank_score($1, $2))` does), and the executor then runs it again. The SQL
//! layer keeps a [`CallMemo`] per backend, scoped to the current transaction, and asks it before
//! scoring: the second evaluation of an identical call (same inputs, same settings) reuses the
//! first one's scores. Keys are SHA-256 digests of every input, so no input text is kept.

use std::collections::VecDeque;

use ring::digest::{Context, SHA256};

/// A SHA-256 digest of a call's inputs, built field by field with length prefixes (so that
/// ("ab", "c") and ("a", "bc") differ).
pub struct CallKey(Context);

impl CallKey {
    pub fn new(kind: &str) -> Self {
        let mut key = CallKey(Context::new(&SHA256));
        key.add(kind.as_bytes());
        key
    }

    pub fn add(&mut self, field: &[u8]) -> &mut Self {
        self.0.update(&(field.len() as u64).to_le_bytes());
        self.0.update(field);
        self
    }

    /// A field that may be absent (a NULL array element): distinct from every present value.
    pub fn add_optional(&mut self, field: Option<&[u8]>) -> &mut Self {
        match field {
            Some(bytes) => self.add(bytes),
            None => {
                self.0.update(&u64::MAX.to_le_bytes());
                self
            }
        }
    }

    fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// The last few results of one scope (a transaction); a new scope forgets the old one's.
pub struct CallMemo<V> {
    scope: u64,
    entries: VecDeque<([u8; 32], V)>,
    capacity: usize,
}

impl<V: Clone> CallMemo<V> {
    pub const fn new(capacity: usize) -> Self {
        CallMemo {
            scope: u64::MAX,
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// The result remembered for `key` in `scope`, if any.
    pub fn get(&mut self, scope: u64, key: &CallKeyDigest) -> Option<V> {
        if scope != self.scope {
            self.scope = scope;
            self.entries.clear();
            return None;
        }
        self.entries
            .iter()
            .find(|(k, _)| *k == key.0)
            .map(|(_, v)| v.clone())
    }

    /// Remember `value` for `key` in `scope`, forgetting the oldest entry when full.
    pub fn put(&mut self, scope: u64, key: CallKeyDigest, value: V) {
        if scope != self.scope {
            self.scope = scope;
            self.entries.clear();
        }
        if self.capacity == 0 {
            return;
        }
        self.entries.retain(|(k, _)| *k != key.0);
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((key.0, value));
    }
}

/// A finished [`CallKey`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CallKeyDigest([u8; 32]);

impl From<CallKey> for CallKeyDigest {
    fn from(key: CallKey) -> Self {
        CallKeyDigest(key.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fields: &[Option<&str>]) -> CallKeyDigest {
        let mut k = CallKey::new("score");
        for f in fields {
            k.add_optional(f.map(str::as_bytes));
        }
        k.into()
    }

    #[test]
    fn field_boundaries_and_nulls_make_different_keys() {
        assert_ne!(key(&[Some("ab"), Some("c")]), key(&[Some("a"), Some("bc")]));
        assert_ne!(key(&[Some(""), None]), key(&[None, Some("")]));
        assert_ne!(key(&[Some("q")]), key(&[Some("q"), None]));
        assert_eq!(key(&[Some("q"), None]), key(&[Some("q"), None]));
    }

    #[test]
    fn results_are_reused_within_a_scope_only() {
        let mut memo = CallMemo::new(2);
        let k = key(&[Some("q"), Some("d")]);
        assert_eq!(memo.get(7, &k), None);
        memo.put(7, k, vec![1.5f32]);
        assert_eq!(memo.get(7, &k), Some(vec![1.5]));
        assert_eq!(memo.get(8, &k), None, "a new transaction forgets");
        assert_eq!(memo.get(7, &k), None, "and does not come back");
    }

    #[test]
    fn the_oldest_entry_goes_when_full() {
        let mut memo = CallMemo::new(2);
        let (a, b, c) = (key(&[Some("a")]), key(&[Some("b")]), key(&[Some("c")]));
        memo.put(1, a, 1);
        memo.put(1, b, 2);
        memo.put(1, c, 3);
        assert_eq!(memo.get(1, &a), None);
        assert_eq!(memo.get(1, &b), Some(2));
        assert_eq!(memo.get(1, &c), Some(3));
    }
}
