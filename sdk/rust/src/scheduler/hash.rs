//! A fast, deterministic hasher for the cache's maps keyed by values the API
//! server generates (pod and owner uids, node names, slot numbers).
//!
//! It is the multiply-rotate hash rustc uses (FxHash). It is not resistant to
//! crafted collisions, so maps keyed by user-chosen strings (labels) keep the
//! standard library's hasher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

/// FxHash, word by word.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(SEED).rotate_left(20);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
        // The length tells "ab" from "ab\0".
        self.add(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Spread the well-mixed high bits into the low ones, which pick the bucket.
        self.hash ^ (self.hash >> 29)
    }
}

pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let build = FxBuildHasher::default();
        assert_eq!(build.hash_one("node-1"), build.hash_one("node-1"));
        let hashes: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| build.hash_one(format!("node-{i}")))
            .collect();
        assert_eq!(hashes.len(), 10_000);
        // Trailing bytes count, and their number too.
        assert_ne!(
            build.hash_one(&b"abcdefgh\0"[..]),
            build.hash_one(&b"abcdefgh"[..])
        );
    }
}
