//! The flightrec host tool: decode dumps, show headers, view audit logs
#![deny(missing_docs)]
