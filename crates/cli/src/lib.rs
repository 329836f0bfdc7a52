//! Support shared by the `lifeboat` binary's demo and benchmarks and by the integration
//! tests in the repository's `tests/` folder: starting and driving the test upstream.

pub mod test_upstream;
