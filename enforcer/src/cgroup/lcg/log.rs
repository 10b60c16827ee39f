//! libcgroup's own log lines (`cgroup_err`, `cgroup_warn`): printed on
//! stdout, prefixed `Error: ` / `Warning: `, filtered by `CGROUP_LOGLEVEL`
//! (ERROR unless set), as its default logger does.

/// `CGROUP_LOG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Error = 1,
    Warning = 2,
    Info = 3,
    Debug = 4,
}

/// The level `CGROUP_LOGLEVEL` asks for (`cgroup_parse_log_level_str`).
pub(crate) fn level() -> Level {
    let Ok(v) = std::env::var("CGROUP_LOGLEVEL") else {
        return Level::Error;
    };
    match v.trim().parse::<i64>() {
        Ok(n) if n <= 1 => Level::Error,
        Ok(2) => Level::Warning,
        Ok(3) => Level::Info,
        Ok(_) => Level::Debug,
        Err(_) => match v.to_ascii_uppercase().as_str() {
            "WARNING" => Level::Warning,
            "INFO" => Level::Info,
            "DEBUG" => Level::Debug,
            _ => Level::Error,
        },
    }
}

/// The line libcgroup logs at `at`, if the level lets it through.
pub(crate) fn line(at: Level, msg: &str) -> Option<String> {
    if at > level() {
        return None;
    }
    let prefix = match at {
        Level::Error => "Error: ",
        Level::Warning => "Warning: ",
        Level::Info => "Info: ",
        Level::Debug => "",
    };
    Some(format!("{prefix}{msg}\n"))
}
