//! Black-box tests of the platform.
