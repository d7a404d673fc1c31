//! Benchmarks live in `benches/`; results and the commands that produced them are in
//! `RESULTS.md`. `examples/append_loop.rs` repeats the append benchmark as a plain loop for
//! instruction counting under callgrind.
#![deny(missing_docs)]
