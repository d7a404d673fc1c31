//! Linux gateway adapter: tracing/log capture, signals, dump files and the audit log
#![deny(missing_docs)]
