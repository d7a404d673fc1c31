//! Host-side decoder of flightrec dumps, flash images and ring files
#![deny(missing_docs)]
