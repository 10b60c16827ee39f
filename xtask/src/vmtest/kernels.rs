//! Which kernel image to boot for `--kernel 6.1 | 6.12 | host | PATH`, installing
//! Debian's cloud kernels when they are not in /boot yet.
//!
//! Cloud flavour: it is the smallest Debian build that still has BTF, BPF-LSM and
//! every cgroup controller, and it boots without an initrd of Debian's own.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup::apt_install;

pub(crate) struct Kernel {
    /// Short name for the report and log file names ("6.1", "6.12", a release).
    pub(crate) label: String,
    pub(crate) image: PathBuf,
    /// `uname -r` of the kernel, to find its modules; None if not known.
    pub(crate) release: Option<String>,
    /// Where its `lib/modules/RELEASE` is: `/` for kernels installed here,
    /// the extracted package for arm64 ones.
    pub(crate) modules_root: PathBuf,
}

/// Debian packages that bring each series' newest cloud kernel into /boot.
/// On Debian 12, linux-image-cloud-amd64 is 6.1; 6.12 comes from bookworm-security
/// as a versioned meta-package.
fn packages(series: &str) -> Option<&'static str> {
    match series {
        "6.1" => Some("linux-image-cloud-amd64"),
        "6.12" => Some("linux-image-6.12-cloud-amd64"),
        _ => None,
    }
}

pub(crate) fn resolve(spec: &str) -> Result<Kernel> {
    if spec == "host" {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?
            .trim()
            .to_string();
        let image = Path::new("/boot").join(format!("vmlinuz-{release}"));
        if !image.exists() {
            bail!(
                "the host kernel {release} has no image in /boot (this VM is booted from \
                 outside); pass its bzImage with --kernel PATH"
            );
        }
        return Ok(Kernel {
            label: release.clone(),
            image,
            release: Some(release),
            modules_root: PathBuf::from("/"),
        });
    }
    if let Some(pkg) = packages(spec) {
        if newest_in_boot(spec).is_none() {
            install(spec, pkg)?;
        }
        let (image, release) = newest_in_boot(spec)
            .with_context(|| format!("{pkg} is installed but /boot has no vmlinuz-{spec}.*"))?;
        return Ok(Kernel {
            label: spec.to_string(),
            image,
            release: Some(release),
            modules_root: PathBuf::from("/"),
        });
    }
    let image = PathBuf::from(spec);
    if !image.is_file() {
        bail!("--kernel {spec}: expected 6.1, 6.12, host or the path of a kernel image");
    }
    let release = bzimage_release(&image);
    let label = release.clone().unwrap_or_else(|| {
        image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.to_string())
    });
    Ok(Kernel {
        label,
        image,
        release,
        modules_root: PathBuf::from("/"),
    })
}

fn install(series: &str, pkg: &str) -> Result<()> {
    let Err(e) = apt_install(&[pkg]) else {
        return Ok(());
    };
    eprintln!("[vmtest] {e:#}; looking for a versioned {series} kernel package");
    // The meta-package may be gone from a future archive: fall back to the newest
    // versioned image of the series that apt knows.
    let out = Command::new("apt-cache")
        .args(["search", "--names-only"])
        .arg(format!(
            "^linux-image-{}\\..*-cloud-amd64-unsigned$",
            series.replace('.', "\\.")
        ))
        .output()
        .context("apt-cache search")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let best = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .max_by(|a, b| version_cmp(a, b))
        .with_context(|| format!("no Debian package provides a {series} cloud kernel"))?;
    apt_install(&[best])
}

/// The highest /boot/vmlinuz-SERIES.* and its release string.
fn newest_in_boot(series: &str) -> Option<(PathBuf, String)> {
    let prefix = format!("vmlinuz-{series}.");
    std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix)
                .then(|| (e.path(), name["vmlinuz-".len()..].to_string()))
        })
        .max_by(|a, b| version_cmp(&a.1, &b.1))
}

/// Compare version strings by their numeric runs, so 6.1.0-57 > 6.1.0-9.
pub(crate) fn version_cmp(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse().ok())
            .collect()
    }
    parts(a).cmp(&parts(b)).then_with(|| a.cmp(b))
}

/// The release string a bzImage carries: boot protocol header field
/// `kernel_version` (offset 0x20e) points, minus 0x200, at "6.1.0-57-cloud-amd64 (...".
fn bzimage_release(image: &Path) -> Option<String> {
    let data = std::fs::read(image).ok()?;
    if data.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let off = u16::from_le_bytes([*data.get(0x20e)?, *data.get(0x20f)?]) as usize + 0x200;
    let rest = data.get(off..)?;
    let end = rest.iter().position(|&b| b == 0 || b == b' ')?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::version_cmp;
    use std::cmp::Ordering;

    #[test]
    fn numeric_version_order() {
        assert_eq!(
            version_cmp("6.1.0-57-cloud-amd64", "6.1.0-9-cloud-amd64"),
            Ordering::Greater
        );
        assert_eq!(
            version_cmp(
                "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
                "linux-image-6.12.99+deb12-cloud-amd64-unsigned"
            ),
            Ordering::Greater
        );
    }
}
