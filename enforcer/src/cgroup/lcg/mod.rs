//! A model of libcgroup 3.x as its tools see it: error codes, the
//! controller/mount table, the argument parsers, `struct cgroup`, and the
//! cgroupfs reads and writes whose details show in the tools' output. It is
//! part of the cgroupfs layer: the compat tools above and the classify
//! engine place processes through it (and through [`mirror`] on hybrid
//! hosts), so neither imports the other.

pub(crate) mod error;
pub(crate) mod fs;
pub(crate) mod log;
pub(crate) mod mirror;
pub(crate) mod model;
pub(crate) mod ops;
pub(crate) mod spec;
pub(crate) mod table;

pub(crate) use error::{EXIT_BADARGS, Ecg, LcgError};
pub(crate) use model::Group;
pub(crate) use table::{CgVersion, SetupMode, Table};
