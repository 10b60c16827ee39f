//! libcgroup's error codes (`ECG*`), the text `cgroup_strerror` gives for each,
//! and how a tool's return value becomes its exit status.
//!
//! The tools return these codes from `main`, so the shell sees the code modulo
//! 256: `ECGROUPNOTEXIST` (50002) exits 82, `ECGOTHER` (50016) exits 96. Scripts
//! test those numbers, so the compat layer keeps the codes, not just the text.

/// An `ECG*` code (libcgroup's `include/libcgroup/error.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ecg {
    NotMounted = 50001,
    NotExist = 50002,
    SubsysNotMounted = 50004,
    NotOwner = 50005,
    NotAllowed = 50007,
    MaxValuesExceeded = 50008,
    ValueExists = 50010,
    Inval = 50011,
    ControllerCreateFailed = 50012,
    Fail = 50013,
    ValueNotExist = 50015,
    /// The OS failed; the text is `strerror(errno)` of the errno kept with it.
    Other = 50016,
    ParseFail = 50019,
    MountFail = 50021,
    Eof = 50023,
    ConfigParseFail = 50024,
    NoVersionConvert = 50031,
}

/// `cgroup_strerror_codes[]`, indexed by `code - 50000`.
const STRINGS: [&str; 32] = [
    "Cgroup is not compiled in",
    "Cgroup is not mounted",
    "Cgroup does not exist",
    "Cgroup has not been created",
    "Cgroup one of the needed subsystems is not mounted",
    "Cgroup, request came in from non owner",
    "Cgroup controllers are bound to different mount points",
    "Cgroup, operation not allowed",
    "Cgroup value set exceeds maximum",
    "Cgroup controller already exists",
    "Cgroup value already exists",
    "Cgroup invalid operation",
    "Cgroup, creation of controller failed",
    "Cgroup operation failed",
    "Cgroup not initialized",
    "Cgroup, requested group parameter does not exist",
    "Cgroup generic error",
    "Cgroup values are not equal",
    "Cgroup controllers are different",
    "Cgroup parsing failed",
    "Cgroup, rules file does not exist",
    "Cgroup mounting failed",
    "",
    "End of File or iterator",
    "Failed to parse config file",
    "Have multiple paths for the same namespace",
    "Controller in namespace does not exist",
    "Either mount or namespace keyword has to be specified in the configuration file",
    "This kernel does not support this feature",
    "Value setting does not succeed",
    "Failed to remove a non-empty group",
    "Failed to convert from cgroup v1 to/from cgroup v2",
];

/// A libcgroup error: its code and, for [`Ecg::Other`], the errno behind it
/// (libcgroup's `last_errno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LcgError {
    pub(crate) code: Ecg,
    pub(crate) errno: i32,
}

impl LcgError {
    pub(crate) const fn new(code: Ecg) -> Self {
        LcgError { code, errno: 0 }
    }

    /// `ECGOTHER` with the errno of `err` (EIO if it carries none).
    pub(crate) fn os(err: &std::io::Error) -> Self {
        LcgError {
            code: Ecg::Other,
            errno: err.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    pub(crate) fn errno(errno: i32) -> Self {
        LcgError {
            code: Ecg::Other,
            errno,
        }
    }

    /// The code as `main` returns it.
    pub(crate) fn ret(self) -> i32 {
        self.code as i32
    }
}

impl std::fmt::Display for LcgError {
    /// `cgroup_strerror(code)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code == Ecg::Other {
            return f.write_str(&strerror(self.errno));
        }
        let idx = (self.code as i32 - 50000) as usize;
        f.write_str(STRINGS.get(idx).copied().unwrap_or("Invalid error code"))
    }
}

/// glibc's `strerror(errno)` text ("No such file or directory").
pub(crate) fn strerror(errno: i32) -> String {
    // std's message is strerror's text plus " (os error N)".
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The exit status for a C `main` returning `ret`: its low eight bits.
pub(crate) fn exit_status(ret: i32) -> u8 {
    (ret & 0xff) as u8
}

/// Exit code of libcgroup's tools for bad arguments (`EXIT_BADARGS`, 3.x).
pub(crate) const EXIT_BADARGS: i32 = 129;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_statuses_match_libcgroup() {
        assert_eq!(
            LcgError::new(Ecg::NotExist).to_string(),
            "Cgroup does not exist"
        );
        assert_eq!(
            LcgError::new(Ecg::ValueNotExist).to_string(),
            "Cgroup, requested group parameter does not exist"
        );
        assert_eq!(
            LcgError::errno(libc::ENOENT).to_string(),
            "No such file or directory"
        );
        assert_eq!(
            LcgError::new(Ecg::NoVersionConvert).to_string(),
            "Failed to convert from cgroup v1 to/from cgroup v2"
        );
        assert_eq!(exit_status(Ecg::NotExist as i32), 82);
        assert_eq!(exit_status(Ecg::Other as i32), 96);
        assert_eq!(exit_status(Ecg::SubsysNotMounted as i32), 84);
        assert_eq!(exit_status(-1), 255);
        assert_eq!(exit_status(EXIT_BADARGS), 129);
    }
}
