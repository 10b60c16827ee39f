//! `struct cgroup` as the tools use it: a named group with controllers in the
//! order they were added, each with named values. The add rules are
//! libcgroup's (`wrapper.c`): a controller must be in the mount table (or be
//! `cgroup`), is added once, and a value name once per controller.

use super::error::{Ecg, LcgError};
use super::table::{CGRP_PSEUDO, CgVersion, Table};

/// Longest value libcgroup keeps (`CG_CONTROL_VALUE_MAX - 1`).
pub(crate) const VALUE_MAX: usize = 4095;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) name: String,
    pub(crate) value: String,
    /// The display form of a value read over several lines (`"a\n\tb"`).
    pub(crate) multiline: Option<String>,
    /// For cgxget's N->1 conversions (cpu.max back to quota or period).
    pub(crate) prev_name: Option<String>,
    pub(crate) dirty: bool,
}

impl Value {
    /// What `cgget` prints after the name.
    pub(crate) fn shown(&self) -> &str {
        self.multiline.as_deref().unwrap_or(&self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Controller {
    pub(crate) name: String,
    pub(crate) version: CgVersion,
    pub(crate) values: Vec<Value>,
}

impl Controller {
    /// `cgroup_add_value_string`. A `None` value is "to be read".
    pub(crate) fn add_value(&mut self, name: &str, value: Option<&str>) -> Result<(), LcgError> {
        if self.values.len() >= 100 {
            return Err(LcgError::new(Ecg::MaxValuesExceeded));
        }
        if self.values.iter().any(|v| v.name == name) {
            return Err(LcgError::new(Ecg::ValueExists));
        }
        let mut v = Value {
            name: name.to_string(),
            ..Value::default()
        };
        if let Some(val) = value {
            if val.len() > VALUE_MAX {
                return Err(LcgError::new(Ecg::ConfigParseFail));
            }
            v.value = val.to_string();
            v.dirty = true;
        }
        self.values.push(v);
        Ok(())
    }

    pub(crate) fn value(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|v| v.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) controllers: Vec<Controller>,
}

impl Group {
    pub(crate) fn new(name: &str) -> Self {
        Group {
            name: name.to_string(),
            controllers: Vec::new(),
        }
    }

    pub(crate) fn controller(&self, name: &str) -> Option<&Controller> {
        self.controllers.iter().find(|c| c.name == name)
    }

    pub(crate) fn controller_mut(&mut self, name: &str) -> Option<&mut Controller> {
        self.controllers.iter_mut().find(|c| c.name == name)
    }

    /// `cgroup_add_controller`: None when it is already there, not mounted,
    /// or the group has 100 controllers.
    pub(crate) fn add_controller(&mut self, table: &Table, name: &str) -> Option<&mut Controller> {
        if self.controllers.len() >= 100 || self.controller(name).is_some() {
            return None;
        }
        let version = if name == CGRP_PSEUDO {
            CgVersion::V2
        } else {
            table.get(name)?.version
        };
        self.controllers.push(Controller {
            name: name.to_string(),
            version,
            values: Vec::new(),
        });
        self.controllers.last_mut()
    }

    /// `cgroup_get_controller` or else `cgroup_add_controller`.
    pub(crate) fn get_or_add(&mut self, table: &Table, name: &str) -> Option<&mut Controller> {
        if self.controller(name).is_some() {
            return self.controller_mut(name);
        }
        self.add_controller(table, name)
    }

    /// `cgroup_copy_cgroup`: the controllers and values of `src`, all dirty.
    pub(crate) fn copy_from(&mut self, src: &Group) {
        self.controllers = src.controllers.clone();
        for c in &mut self.controllers {
            for v in &mut c.values {
                v.dirty = true;
            }
        }
    }
}
