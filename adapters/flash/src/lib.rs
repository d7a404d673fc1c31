//! Power-fail-safe dump storage on NOR flash for microcontrollers
#![deny(missing_docs)]
