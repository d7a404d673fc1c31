//! Benchmarks live in `benches/`; results and the commands that produced them are in
//! `RESULTS.md`.
