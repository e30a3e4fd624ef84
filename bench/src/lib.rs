//! Benchmarks and the end-to-end runner of ringcast.
