//! A model of libcgroup 3.x as its tools see it: error codes, the
//! controller/mount table, the argument parsers, `struct cgroup`, and the
//! cgroupfs reads and writes whose details show in the tools' output.

pub(crate) mod error;
pub(crate) mod fs;
pub(crate) mod log;
pub(crate) mod model;
pub(crate) mod ops;
pub(crate) mod spec;
pub(crate) mod table;

pub(crate) use error::{EXIT_BADARGS, Ecg, LcgError};
pub(crate) use model::Group;
pub(crate) use table::{CgVersion, SetupMode, Table};
