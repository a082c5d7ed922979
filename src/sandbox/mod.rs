//! A local server that behaves like WeChat's API, for tests, demos and benchmarks.
