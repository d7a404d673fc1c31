//! Audit-line renderers (ejabberd and Open-Xchange styles), escaping and parsing
#![deny(missing_docs)]
