//! `[[container]]`: kernel rules for containers that a runtime (podman,
//! docker, containerd, CRI-O) starts, chosen by what enforcer reads about
//! them (the runtime and id in their cgroup path, the name where the runtime
//! writes it down), not by a group path the policy creates.

use super::model::{GroupSpec, Span, Spanned};

/// One `[[container]]` table, syntax-checked.
#[derive(Debug, Clone)]
pub struct ContainerRule {
    /// Where the table starts.
    pub span: Span,
    /// `docker`, `containerd`, `crio` or `podman`.
    pub runtime: Option<Spanned<String>>,
    /// A glob (`*`, `?`) on the container's name.
    pub name: Option<Spanned<String>>,
    /// A prefix of the container id (hex digits).
    pub id: Option<Spanned<String>>,
    /// The rules (its `network` and `syscalls`), as a group's; its name is
    /// `container[N]` (the table's place in the file, from 1).
    pub rules: GroupSpec,
}

/// The runtimes whose containers enforcer recognises (`collect::Workload`).
pub const RUNTIMES: [&str; 4] = ["docker", "containerd", "crio", "podman"];
