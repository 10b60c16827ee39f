//! Rules for `perm { task { ... } admin { ... } }` shared by both file formats,
//! so cgconfig.conf and TOML accept exactly the same owners and modes.

use super::model::{GroupSpec, Owner, Perm};

/// Which of the two owner blocks of a `perm` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerKind {
    /// Owner and mode of the `tasks`/`cgroup.procs` files (who may move tasks in).
    Task,
    /// Owner and modes of the group directory and its other files.
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermField {
    Uid,
    Gid,
    Fperm,
    Dperm,
}

/// Why a field name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// Not a field of any owner block.
    Unknown,
    /// `dperm` inside `task`: libcgroup rejects it, since tasks files are not directories.
    DpermInTask,
}

impl OwnerKind {
    pub(crate) fn from_keyword(word: &str) -> Option<Self> {
        match word {
            "task" => Some(Self::Task),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Admin => "admin",
        }
    }

    /// The field names this block accepts, or the block could end instead.
    pub(crate) fn expected_fields_or_close(self) -> &'static str {
        match self {
            Self::Task => "`uid`, `gid`, `fperm` or `}`",
            Self::Admin => "`uid`, `gid`, `dperm`, `fperm` or `}`",
        }
    }

    pub(crate) fn field(self, name: &str) -> Result<PermField, FieldError> {
        match (self, name) {
            (_, "uid") => Ok(PermField::Uid),
            (_, "gid") => Ok(PermField::Gid),
            // libcgroup's cgsnapshot writes the task owner as tuid/tgid.
            (Self::Task, "tuid") => Ok(PermField::Uid),
            (Self::Task, "tgid") => Ok(PermField::Gid),
            (_, "fperm") => Ok(PermField::Fperm),
            (Self::Admin, "dperm") => Ok(PermField::Dperm),
            (Self::Task, "dperm") => Err(FieldError::DpermInTask),
            _ => Err(FieldError::Unknown),
        }
    }

    pub(crate) fn slot(self, perm: &mut Perm) -> &mut Option<Owner> {
        match self {
            Self::Task => &mut perm.task,
            Self::Admin => &mut perm.admin,
        }
    }
}

impl PermField {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Uid => "uid",
            Self::Gid => "gid",
            Self::Fperm => "fperm",
            Self::Dperm => "dperm",
        }
    }

    pub(crate) fn is_set(self, owner: &Owner) -> bool {
        match self {
            Self::Uid => owner.uid.is_some(),
            Self::Gid => owner.gid.is_some(),
            Self::Fperm => owner.fperm.is_some(),
            Self::Dperm => owner.dperm.is_some(),
        }
    }

    /// Stores `value` (as written) into `owner`, or says what is wrong with it.
    pub(crate) fn set(self, owner: &mut Owner, value: &str) -> Result<(), String> {
        match self {
            Self::Uid | Self::Gid => {
                if value.is_empty() {
                    let what = if self == Self::Uid { "user" } else { "group" };
                    return Err(format!(
                        "`{}` is empty: give a {what} name or a numeric id",
                        self.name()
                    ));
                }
                let slot = if self == Self::Uid {
                    &mut owner.uid
                } else {
                    &mut owner.gid
                };
                *slot = Some(value.to_owned());
            }
            Self::Fperm | Self::Dperm => {
                let mode = parse_mode(value).map_err(|why| format!("`{}` {why}", self.name()))?;
                let slot = if self == Self::Fperm {
                    &mut owner.fperm
                } else {
                    &mut owner.dperm
                };
                *slot = Some(mode);
            }
        }
        Ok(())
    }
}

pub(crate) const DPERM_IN_TASK: &str = "`dperm` is not allowed in `task`: the tasks file is not a directory; use `fperm` here, or move `dperm` to `admin`";

/// The largest mode `chmod` takes: permission bits plus setuid/setgid/sticky.
const MAX_MODE: u32 = 0o7777;

/// Reads an octal mode such as `660` or `0775`, as libcgroup does with `strtol(.., 8)`,
/// but without its habit of silently accepting an empty string.
pub(crate) fn parse_mode(text: &str) -> Result<u32, String> {
    let bad = || format!("value `{text}` is not an octal mode: use digits 0-7, such as `660`");
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= MAX_MODE => Ok(mode),
        _ => Err(format!(
            "value `{text}` is too large for a file mode: the largest is `7777`"
        )),
    }
}

/// Applies cgconfig.conf's `default { perm { ... } }` the way libcgroup does: every
/// field a group leaves unset is taken from the default, field by field.
pub(crate) fn apply_default(groups: &mut [GroupSpec], default: &Perm) {
    for group in groups {
        merge_owner(&mut group.perm.task, default.task.as_ref());
        merge_owner(&mut group.perm.admin, default.admin.as_ref());
    }
}

fn merge_owner(own: &mut Option<Owner>, default: Option<&Owner>) {
    let Some(default) = default else { return };
    match own {
        // The whole block comes from `default`, so its span points there.
        None => *own = Some(default.clone()),
        Some(own) => {
            own.uid = own.uid.take().or_else(|| default.uid.clone());
            own.gid = own.gid.take().or_else(|| default.gid.clone());
            own.fperm = own.fperm.or(default.fperm);
            own.dperm = own.dperm.or(default.dperm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0775"), Ok(0o775));
        assert_eq!(parse_mode("7777"), Ok(0o7777));
        assert!(parse_mode("").is_err());
        assert!(parse_mode("68").unwrap_err().contains("not an octal mode"));
        assert!(parse_mode("0o660").is_err());
        assert!(parse_mode("-1").is_err());
        assert!(parse_mode("17777").unwrap_err().contains("too large"));
    }

    #[test]
    fn task_blocks_take_no_dperm() {
        assert_eq!(OwnerKind::Admin.field("dperm"), Ok(PermField::Dperm));
        assert_eq!(OwnerKind::Task.field("dperm"), Err(FieldError::DpermInTask));
        assert_eq!(OwnerKind::Task.field("mode"), Err(FieldError::Unknown));
    }
}
