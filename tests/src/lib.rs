//! Cross-crate tests live in `tests/`. This crate's doctests are the README's examples, so
//! they keep compiling.
#![doc = include_str!("../../README.md")]
