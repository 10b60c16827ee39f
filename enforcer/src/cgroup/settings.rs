//! `set` and `get` (cgset, cgget): controller files in either spelling, each write
//! reported with the value the kernel actually kept.

use std::path::Path;

use serde::Serialize;

use super::error::CgroupError;
use super::fsio::{read_trim, write};
use super::host::Cgroups;
use super::keys::{self, WriteValue};
use super::mounts::Version;
use super::path::GroupPath;

/// One validated file write, ready to run.
#[derive(Debug, Clone)]
pub struct PreparedWrite {
    pub hier: usize,
    /// The key and value as the user wrote them.
    pub key: String,
    pub value: String,
    pub file: String,
    pub write: WriteValue,
    /// Files to write instead when the group turns out not to have `file` (it
    /// did not exist yet when the write was prepared); see `keys::FileWrite`.
    pub alternatives: Vec<(String, WriteValue)>,
}

/// What a write did: the file written and the value the kernel reads back.
#[derive(Debug, Clone, Serialize)]
pub struct SetOutcome {
    pub group: String,
    pub hierarchy: String,
    pub key: String,
    pub file: String,
    pub written: String,
    pub effective: String,
}

/// v2 files that exist only below the root, so cannot be found by looking at an
/// ancestor before the group is created.
const V2_NONROOT_FILES: &[&str] = &[
    "memory.oom.group",
    "memory.zswap.max",
    "memory.zswap.writeback",
    "memory.swap.high",
    "cpu.max.burst",
    "cpu.idle",
    "cpu.weight.nice",
    "cpu.uclamp.min",
    "cpu.uclamp.max",
    "io.max",
    "io.latency",
    "io.bfq.weight",
    "cpuset.cpus.partition",
    "cpuset.cpus.exclusive",
];

impl Cgroups {
    /// Check a raw (untranslated) key names a file this host has, in the group or
    /// one of its ancestors (a group not yet created has no files to look at).
    fn raw_key_exists(&self, hier: usize, path: &GroupPath, file: &str) -> bool {
        if self.hierarchy(hier).version == Version::V2 && V2_NONROOT_FILES.contains(&file) {
            return true;
        }
        let mut chain = path.ancestors();
        chain.push(path.clone());
        chain.iter().any(|g| self.dir(hier, g).join(file).is_file())
    }

    /// Which hierarchy a key's controller lives in on this host.
    pub fn hierarchy_for_key(&self, key: &str) -> Result<usize, CgroupError> {
        let (v1, v2) = keys::controller_names(key)?;
        match self.locate(&v1) {
            Ok((i, _)) => Ok(i),
            Err(first) => self.locate(&v2).map(|(i, _)| i).map_err(|_| first),
        }
    }

    /// Validate one `key=value` for `path` without touching the host.
    /// `must_exist`: the group must already exist (set), or may be created first (apply).
    pub fn prepare_setting(
        &self,
        path: &GroupPath,
        key: &str,
        value: &str,
        must_exist: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<PreparedWrite>, CgroupError> {
        let hier = self.hierarchy_for_key(key)?;
        let version = self.hierarchy(hier).version;
        let t = keys::translate(key, value, version, self.facts())?;
        if t.raw && !self.raw_key_exists(hier, path, key) {
            return Err(CgroupError::UnknownKey {
                key: key.to_string(),
                hint: format!(
                    "no such file in the {} hierarchy; `enforcer get -g {} {path}` lists the files there",
                    self.hierarchy(hier).label(),
                    key.split('.').next().unwrap_or(key)
                ),
            });
        }
        if must_exist && !self.exists(hier, path) {
            return Err(CgroupError::NotFound {
                path: path.to_string(),
                hierarchy: self.hierarchy(hier).label(),
            });
        }
        warnings.extend(t.warnings);
        t.writes
            .into_iter()
            .map(|w| {
                let w = self.choose_file(hier, path, key, w)?;
                Ok(PreparedWrite {
                    hier,
                    key: key.to_string(),
                    value: value.to_string(),
                    file: w.file,
                    write: w.value,
                    alternatives: w.alternatives,
                })
            })
            .collect()
    }

    /// For a write with alternative files, pick the one this kernel has, judged
    /// by the group itself or else its nearest ancestor showing any of them.
    /// When none shows one (a group still to be created below the root, whose
    /// files a kernel may hide), the choice waits until the write; a group that
    /// exists and has none of the files is an unknown key.
    fn choose_file(
        &self,
        hier: usize,
        path: &GroupPath,
        key: &str,
        w: keys::FileWrite,
    ) -> Result<keys::FileWrite, CgroupError> {
        if w.alternatives.is_empty() {
            return Ok(w);
        }
        let mut options = vec![(w.file, w.value)];
        options.extend(w.alternatives);
        let mut chain = path.ancestors();
        chain.push(path.clone());
        for (n, g) in chain.iter().rev().enumerate() {
            let dir = self.dir(hier, g);
            if let Some(i) = options.iter().position(|(f, _)| dir.join(f).is_file()) {
                let (file, value) = options.swap_remove(i);
                return Ok(keys::FileWrite {
                    file,
                    value,
                    alternatives: Vec::new(),
                });
            }
            if n == 0 && dir.is_dir() {
                let names: Vec<&str> = options.iter().map(|(f, _)| f.as_str()).collect();
                return Err(CgroupError::UnknownKey {
                    key: key.to_string(),
                    hint: format!(
                        "group {path} has none of {} in the {} hierarchy: this kernel offers \
                         no such setting (for I/O weights, the BFQ scheduler provides \
                         blkio.bfq.weight / io.bfq.weight)",
                        names.join(", "),
                        self.hierarchy(hier).label()
                    ),
                });
            }
        }
        let (file, value) = options.remove(0);
        Ok(keys::FileWrite {
            file,
            value,
            alternatives: options,
        })
    }

    /// Perform one prepared write and read the file back.
    pub fn run_write(
        &self,
        path: &GroupPath,
        w: &PreparedWrite,
    ) -> Result<SetOutcome, CgroupError> {
        let dir = self.dir(w.hier, path);
        let (name, value) = std::iter::once((&w.file, &w.write))
            .chain(w.alternatives.iter().map(|(f, v)| (f, v)))
            .find(|(f, _)| dir.join(f).is_file())
            .unwrap_or((&w.file, &w.write));
        let file = dir.join(name);
        let text = match value {
            WriteValue::Literal(s) => s.clone(),
            WriteValue::CpuMaxPeriod(p) => {
                let cur = read_trim(&file)?;
                format!("{} {p}", cur.split_whitespace().next().unwrap_or("max"))
            }
        };
        write(&file, &text)?;
        Ok(SetOutcome {
            group: path.to_string(),
            hierarchy: self.hierarchy(w.hier).label(),
            key: w.key.clone(),
            file: name.clone(),
            effective: read_trim(&file).unwrap_or_default(),
            written: text,
        })
    }

    /// cgset: validate every setting for every group, then write them all.
    pub fn set(
        &self,
        paths: &[GroupPath],
        settings: &[(String, String)],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<SetOutcome>, CgroupError> {
        // The root's files are the host's own (or absent); the kernel would
        // refuse most writes only after earlier ones in the batch succeeded.
        if paths.iter().any(GroupPath::is_root) {
            return Err(CgroupError::RootForbidden {
                action: "changed by set",
            });
        }
        let mut plan = Vec::new();
        for p in paths {
            for (k, v) in settings {
                for w in self.prepare_setting(p, k, v, true, warnings)? {
                    plan.push((p, w));
                }
            }
        }
        plan.iter().map(|(p, w)| self.run_write(p, w)).collect()
    }

    /// cgset --copy-from: copy every writable setting of `src`'s controllers.
    pub fn settings_of(&self, src: &GroupPath) -> Result<Vec<(String, String)>, CgroupError> {
        if src.is_root() {
            return Err(CgroupError::RootForbidden {
                action: "used as the --copy-from source",
            });
        }
        let present = self.present_in(src);
        if present.is_empty() {
            return Err(CgroupError::NotFound {
                path: src.to_string(),
                hierarchy: "any".into(),
            });
        }
        let mut out = Vec::new();
        for h in present {
            // Only controllers' files are copied: none from a mirror without
            // controllers, memory's where cgroup2 holds memory on a hybrid host.
            let hier = self.hierarchy(h);
            for (file, value) in controller_files(&self.dir(h, src), &hier.controllers)? {
                if is_copyable(&self.dir(h, src).join(&file), &file) && !value.contains('\n') {
                    out.push((file, value));
                }
            }
        }
        Ok(out)
    }
}

/// Files whose value is a setting worth copying: writable, not a trigger
/// (`memory.force_empty`), not a process list, not a per-device table, not
/// another view of a setting copied already.
fn is_copyable(path: &Path, file: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    const SKIP: &[&str] = &[
        // cgroup2's cpu.weight as the nearest nice level: written after
        // cpu.weight, it would replace the copied weight with the nice
        // level's (weight 50 reads back as nice 3, which is weight 51).
        "cpu.weight.nice",
        "memory.force_empty",
        "memory.reclaim",
        "memory.max_usage_in_bytes",
        "memory.memsw.max_usage_in_bytes",
        "memory.kmem.max_usage_in_bytes",
        "memory.kmem.tcp.max_usage_in_bytes",
        "memory.failcnt",
        "memory.memsw.failcnt",
        "memory.kmem.failcnt",
        "memory.kmem.tcp.failcnt",
        "memory.oom_control",
        "memory.peak",
        "memory.swap.peak",
        "cpuacct.usage",
        "blkio.reset_stats",
        "devices.allow",
        "devices.deny",
        "cgroup.event_control",
    ];
    let writable = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o200 != 0)
        .unwrap_or(false);
    writable && !SKIP.contains(&file) && !file.starts_with("cgroup.")
}

/// `CONTROLLER.*` files of a group directory and their values, sorted by name.
/// Files that cannot be read (write-only triggers) are skipped.
fn controller_files(
    dir: &Path,
    controllers: &[String],
) -> Result<Vec<(String, String)>, CgroupError> {
    let rd = std::fs::read_dir(dir).map_err(|e| CgroupError::io("listing", dir, e))?;
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            controllers.iter().any(|c| {
                n.strip_prefix(c.as_str())
                    .is_some_and(|r| r.starts_with('.'))
            })
        })
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .filter_map(|n| read_trim(&dir.join(&n)).ok().map(|v| (n, v)))
        .collect())
}

/// What `get` shows for one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupValues {
    pub group: String,
    pub values: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub file: String,
    pub value: String,
}

/// Memory usage in one shape whichever cgroup version holds it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MemoryStats {
    pub usage_bytes: u64,
    pub peak_bytes: Option<u64>,
    /// None when unlimited.
    pub limit_bytes: Option<u64>,
    /// v1 `memory.failcnt`; v2 `memory.events` `max` (times the limit was hit).
    pub failcnt: u64,
    pub oom_kills: u64,
}

fn num(path: &Path) -> Option<u64> {
    read_trim(path).ok()?.parse().ok()
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    read_trim(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// v1 reports "unlimited" as the largest page-aligned i64.
const V1_UNLIMITED: u64 = 1 << 62;

pub fn memory_stats(dir: &Path, version: Version) -> MemoryStats {
    match version {
        Version::V1 => MemoryStats {
            usage_bytes: num(&dir.join("memory.usage_in_bytes")).unwrap_or(0),
            peak_bytes: num(&dir.join("memory.max_usage_in_bytes")),
            limit_bytes: num(&dir.join("memory.limit_in_bytes")).filter(|&l| l < V1_UNLIMITED),
            failcnt: num(&dir.join("memory.failcnt")).unwrap_or(0),
            oom_kills: keyed(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0),
        },
        Version::V2 => MemoryStats {
            usage_bytes: num(&dir.join("memory.current")).unwrap_or(0),
            peak_bytes: num(&dir.join("memory.peak")),
            limit_bytes: num(&dir.join("memory.max")),
            failcnt: keyed(&dir.join("memory.events"), "max").unwrap_or(0),
            oom_kills: keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0),
        },
    }
}

impl Cgroups {
    /// Memory usage of `path`, if the memory controller is mounted and the group
    /// exists in its hierarchy.
    pub fn memory_of(&self, path: &GroupPath) -> Option<MemoryStats> {
        let (h, _) = self.locate("memory").ok()?;
        if !self.exists(h, path) {
            return None;
        }
        Some(memory_stats(&self.dir(h, path), self.hierarchy(h).version))
    }

    /// cgget: the named keys, or every file of the named controllers, or every
    /// controller file of the group.
    pub fn get(
        &self,
        path: &GroupPath,
        keys: &[String],
        controllers: &[String],
    ) -> Result<GroupValues, CgroupError> {
        let present = self.present_in(path);
        if present.is_empty() {
            return Err(CgroupError::NotFound {
                path: path.to_string(),
                hierarchy: "any".into(),
            });
        }
        let mut values = Vec::new();
        for key in keys {
            let h = self.hierarchy_for_key(key)?;
            if !self.exists(h, path) {
                return Err(CgroupError::NotFound {
                    path: path.to_string(),
                    hierarchy: self.hierarchy(h).label(),
                });
            }
            let dir = self.dir(h, path);
            let files = keys::read_files_for(key, self.hierarchy(h).version);
            let Some(file) = files.iter().find(|f| dir.join(f).is_file()) else {
                return Err(CgroupError::UnknownKey {
                    key: key.clone(),
                    hint: format!(
                        "no file {} in group {path}; `enforcer get -g {} {path}` lists the files there",
                        files.join(" or "),
                        self.hierarchy(h).label()
                    ),
                });
            };
            let file = file.to_string();
            let full = dir.join(&file);
            values.push(KeyValue {
                key: key.clone(),
                value: read_trim(&full)?,
                file,
            });
        }
        let mut wanted: Vec<(usize, Vec<String>)> = Vec::new();
        for c in controllers {
            let (h, alias) = self.locate(c)?;
            let name = alias.unwrap_or_else(|| c.clone());
            wanted.push((h, vec![name]));
        }
        if keys.is_empty() && controllers.is_empty() {
            for &h in &present {
                let hier = self.hierarchy(h);
                if !hier.controllers.is_empty() && !hier.controllers[0].starts_with("name=") {
                    wanted.push((h, hier.controllers.clone()));
                }
            }
        }
        for (h, ctrls) in wanted {
            if !self.exists(h, path) {
                return Err(CgroupError::NotFound {
                    path: path.to_string(),
                    hierarchy: self.hierarchy(h).label(),
                });
            }
            for (file, value) in controller_files(&self.dir(h, path), &ctrls)? {
                values.push(KeyValue {
                    key: file.clone(),
                    file,
                    value,
                });
            }
        }
        Ok(GroupValues {
            group: path.to_string(),
            values,
            memory: self.memory_of(path),
        })
    }
}
