//! An initramfs image: a tree of guest paths, written as a gzipped cpio (newc)
//! archive and cached under target/vmtest/ until one of its inputs changes.
//!
//! The writer is here rather than a `cpio` tool because newc is 110 bytes of hex
//! header per entry, and writing it ourselves lets us add device nodes and symlinks
//! without staging a directory or needing root-owned files on disk.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, Hash)]
enum Entry {
    Dir,
    /// Content read from the host when the archive is written. `strip` drops
    /// debug info (our debug builds are ~90% DWARF, which would only slow the boot).
    File {
        host: PathBuf,
        mode: u32,
        strip: bool,
    },
    Bytes {
        data: Vec<u8>,
        mode: u32,
    },
    Symlink(PathBuf),
    CharDev {
        major: u32,
        minor: u32,
    },
}

/// Guest paths (absolute) to what should be there. Parents are added as needed.
#[derive(Default)]
pub(crate) struct Tree {
    entries: BTreeMap<PathBuf, Entry>,
    /// Top-level symlinks copied from the host (`/lib -> usr/lib` on merged-/usr
    /// systems). Paths added under them are rewritten to the target, because the
    /// kernel's cpio unpacker must find a real directory for each entry's parent.
    top_links: BTreeMap<PathBuf, PathBuf>,
}

impl Tree {
    /// Mirror the merged-/usr symlinks of the root filesystem at `root` (the
    /// host's is `/`), so `/lib64/ld-linux-x86-64.so.2` (every binary's
    /// interpreter) and `/bin/sh` resolve as there.
    pub(crate) fn mirror_top_level_links(&mut self, root: &Path) {
        for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let guest = Path::new("/").join(name);
            if let Ok(target) = std::fs::read_link(root.join(name)) {
                self.top_links
                    .insert(guest.clone(), Path::new("/").join(&target));
                self.entries.insert(guest, Entry::Symlink(target));
            }
        }
    }

    /// Where `path` really lives in the guest once the top-level links are followed.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        let mut comps = path.components();
        if let (Some(Component::RootDir), Some(Component::Normal(first))) =
            (comps.next(), comps.next())
            && let Some(target) = self.top_links.get(&Path::new("/").join(first))
        {
            return target.join(comps.as_path());
        }
        path.to_path_buf()
    }

    pub(crate) fn contains(&self, path: &Path) -> bool {
        self.entries.contains_key(&self.resolve(path))
    }

    fn insert(&mut self, path: &Path, entry: Entry) {
        let path = self.resolve(path);
        let mut parent = path.parent();
        while let Some(p) = parent {
            if p == Path::new("/") {
                break;
            }
            self.entries.entry(p.to_path_buf()).or_insert(Entry::Dir);
            parent = p.parent();
        }
        self.entries.insert(path, entry);
    }

    pub(crate) fn dir(&mut self, path: &str) {
        self.insert(Path::new(path), Entry::Dir);
    }

    /// A host file at guest path `guest` (its content, symlinks followed).
    pub(crate) fn file(&mut self, guest: &Path, host: &Path, strip: bool) -> Result<()> {
        let meta = std::fs::metadata(host).with_context(|| format!("{}", host.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        self.insert(
            guest,
            Entry::File {
                host: host.to_path_buf(),
                mode,
                strip,
            },
        );
        Ok(())
    }

    pub(crate) fn bytes(&mut self, guest: &str, data: impl Into<Vec<u8>>, mode: u32) {
        let data = data.into();
        self.insert(Path::new(guest), Entry::Bytes { data, mode });
    }

    pub(crate) fn symlink(&mut self, guest: &Path, target: &Path) {
        self.insert(guest, Entry::Symlink(target.to_path_buf()));
    }

    pub(crate) fn char_dev(&mut self, guest: &str, major: u32, minor: u32) {
        self.insert(Path::new(guest), Entry::CharDev { major, minor });
    }

    /// Changes whenever an entry or a host file's size or mtime does.
    fn fingerprint(&self) -> String {
        let mut h = DefaultHasher::new();
        for (path, entry) in &self.entries {
            path.hash(&mut h);
            entry.hash(&mut h);
            if let Entry::File { host, .. } = entry
                && let Ok(m) = std::fs::metadata(host)
            {
                m.len().hash(&mut h);
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .hash(&mut h);
            }
        }
        format!("{:016x}", h.finish())
    }

    /// Write `out` (gzip'd newc cpio) unless an identical one is already there.
    /// Returns whether it was (re)built. `scratch` holds debug-stripped copies.
    pub(crate) fn write_cached(&self, out: &Path, scratch: &Path) -> Result<bool> {
        let key_file = out.with_extension("key");
        let key = self.fingerprint();
        if out.exists() && std::fs::read_to_string(&key_file).ok().as_deref() == Some(&key) {
            return Ok(false);
        }
        let _ = std::fs::remove_file(&key_file);
        self.write_gzip(out, scratch)
            .with_context(|| format!("writing {}", out.display()))?;
        std::fs::write(&key_file, key)?;
        Ok(true)
    }

    fn write_gzip(&self, out: &Path, scratch: &Path) -> Result<()> {
        // gzip -1: the archive is rebuilt after every code change, and -1 is
        // several times faster than the default for a few percent more bytes.
        let file = File::create(out)?;
        let mut gzip = Command::new("gzip")
            .args(["-1", "-n", "-c"])
            .stdin(Stdio::piped())
            .stdout(file)
            .spawn()
            .context("could not start gzip")?;
        let stdin = gzip.stdin.take().context("gzip stdin")?;
        let written = self.write_cpio(BufWriter::new(stdin), scratch);
        let st = gzip.wait()?;
        written?;
        if !st.success() {
            bail!("gzip failed: {st}");
        }
        Ok(())
    }

    fn write_cpio(&self, mut w: impl Write, scratch: &Path) -> Result<()> {
        let mut cpio = Cpio { w: &mut w, ino: 1 };
        for (path, entry) in &self.entries {
            let name = path.strip_prefix("/").unwrap_or(path);
            match entry {
                Entry::Dir => cpio.entry(name, 0o040_755, 0, &[])?,
                Entry::File { host, mode, strip } => {
                    let data = read_file(host, *strip, scratch)?;
                    cpio.entry(name, 0o100_000 | mode, 0, &data)?
                }
                Entry::Bytes { data, mode } => cpio.entry(name, 0o100_000 | mode, 0, data)?,
                Entry::Symlink(target) => {
                    let t = target.as_os_str().as_encoded_bytes();
                    cpio.entry(name, 0o120_777, 0, t)?
                }
                Entry::CharDev { major, minor } => {
                    cpio.entry(name, 0o020_600, (*major << 8) | *minor, &[])?
                }
            }
        }
        cpio.entry(Path::new("TRAILER!!!"), 0, 0, &[])?;
        w.flush()?;
        Ok(())
    }
}

fn read_file(host: &Path, strip: bool, scratch: &Path) -> Result<Vec<u8>> {
    if strip {
        std::fs::create_dir_all(scratch)?;
        let name = host.file_name().context("file name")?;
        let stripped = scratch.join(name);
        let ok = Command::new(objcopy_for(host))
            .arg("--strip-debug")
            .arg(host)
            .arg(&stripped)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        // Without binutils the full binary still works, only bigger.
        if ok {
            return std::fs::read(&stripped).with_context(|| format!("{}", stripped.display()));
        }
    }
    std::fs::read(host).with_context(|| format!("reading {}", host.display()))
}

/// The objcopy that knows `file`'s architecture: the host's binutils read
/// x86 only; an aarch64 ELF (`e_machine` 183) needs the cross binutils that
/// come with gcc-aarch64-linux-gnu.
fn objcopy_for(file: &Path) -> &'static str {
    let mut head = [0u8; 20];
    let machine = std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|()| u16::from_le_bytes([head[18], head[19]]));
    match machine {
        Ok(183) => "aarch64-linux-gnu-objcopy",
        _ => "objcopy",
    }
}

/// The "newc" format: ASCII header, NUL-terminated name and data, each padded
/// to 4 bytes.
struct Cpio<'a, W: Write> {
    w: &'a mut W,
    ino: u32,
}

impl<W: Write> Cpio<'_, W> {
    fn entry(&mut self, name: &Path, mode: u32, rdev: u32, data: &[u8]) -> Result<()> {
        let name = name.as_os_str().as_encoded_bytes();
        let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).context("file over 4 GiB")?,
            0, // dev major
            0, // dev minor
            rdev >> 8,
            rdev & 0xff,
            u32::try_from(name.len() + 1)?,
            0, // check
        ];
        self.ino += 1;
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.w.write_all(header.as_bytes())?;
        self.w.write_all(name)?;
        self.w.write_all(&[0])?;
        self.pad(header.len() + name.len() + 1)?;
        self.w.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> Result<()> {
        let n = (4 - len % 4) % 4;
        self.w.write_all(&[0u8; 3][..n])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_padded_to_four_bytes() {
        let mut tree = Tree::default();
        tree.bytes("/a", b"xyz".to_vec(), 0o644);
        let mut out = Vec::new();
        tree.write_cpio(&mut out, Path::new("/nonexistent"))
            .unwrap();
        // header 110 + "a\0" = 112 (aligned), data 3 -> 4, then the trailer.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[110..112], b"a\0");
        assert_eq!(&out[112..116], b"xyz\0");
        assert_eq!(&out[116..122], b"070701");
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn paths_under_mirrored_links_land_in_the_target() {
        let mut tree = Tree::default();
        tree.top_links.insert("/lib".into(), "/usr/lib".into());
        tree.bytes("/lib/x/libc.so.6", b"".to_vec(), 0o755);
        assert!(tree.entries.contains_key(Path::new("/usr/lib/x/libc.so.6")));
        assert!(tree.entries.contains_key(Path::new("/usr/lib/x")));
        assert!(tree.contains(Path::new("/lib/x/libc.so.6")));
    }
}
