//! Black-box tests of the `lifehook` binary: the real executable and the real AWS SDK
//! against an in-process sandbox over loopback. One test binary (each test file a module)
//! so that the SDK crates are linked once, not once per file.
//!
//! Every wait is bounded by one patience setting, [`common::patience`], which
//! `LIFEHOOK_TEST_PATIENCE` stretches on a slow machine.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

mod agent;
mod check;
mod controller;
mod demo;
mod exit_codes;
mod failures;
mod first_hour;
mod lambda;
mod longrun;
mod ops;
mod packaging;
mod policy;
mod scenario2;
mod scenario3;
mod scenario4;
mod setup;
mod steps;
mod ui;
