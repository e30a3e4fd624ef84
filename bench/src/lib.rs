//! Benchmarks and the end-to-end runner of ringcast.

pub mod e2e;
