//! Finding one struct member's offset in the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), for the compat-syscall check of
//! `enforce_syscalls` (aya 0.14 does not expose BTF member offsets).
//!
//! Only the type section is walked; see the kernel's
//! `Documentation/bpf/btf.rst` for the format.

/// Kind numbers (`BTF_KIND_*`) and the size of the data that follows each
/// type record.
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        // INT: one u32.
        1 => 4,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
        // ARRAY: type, index type, count.
        3 => 12,
        // STRUCT, UNION: members (name, type, offset); DATASEC: vars; ENUM64.
        4 | 5 | 15 | 19 => 12 * vlen,
        // ENUM: (name, value); FUNC_PROTO: params (name, type).
        6 | 13 => 8 * vlen,
        // VAR, DECL_TAG: one u32.
        14 | 17 => 4,
        _ => return None,
    })
}

const KIND_STRUCT: u32 = 4;

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let bytes = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn str_at(strings: &[u8], off: u32) -> Option<&[u8]> {
    let rest = strings.get(off as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    rest.get(..end)
}

/// Byte offset of `member` in the struct named `name`, if `btf` (raw BTF in
/// this machine's byte order) has such a struct and the member is not a
/// bitfield at a non-byte offset.
pub(super) fn member_offset(btf: &[u8], name: &str, member: &str) -> Option<u32> {
    if btf.get(..2)? != 0xeb9fu16.to_ne_bytes() {
        return None;
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let type_off = u32_at(btf, 8)? as usize;
    let type_len = u32_at(btf, 12)? as usize;
    let str_off = u32_at(btf, 16)? as usize;
    let str_len = u32_at(btf, 20)? as usize;
    let types_start = hdr_len.checked_add(type_off)?;
    let types = btf.get(types_start..types_start.checked_add(type_len)?)?;
    let strings_start = hdr_len.checked_add(str_off)?;
    let strings = btf.get(strings_start..strings_start.checked_add(str_len)?)?;

    let mut pos = 0usize;
    while pos < types.len() {
        let name_off = u32_at(types, pos)?;
        let info = u32_at(types, pos + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31 != 0;
        let body = pos + 12;
        if kind == KIND_STRUCT && str_at(strings, name_off)? == name.as_bytes() {
            for i in 0..vlen {
                let m = body + 12 * i;
                if str_at(strings, u32_at(types, m)?)? == member.as_bytes() {
                    let raw = u32_at(types, m + 8)?;
                    let bits = if kind_flag { raw & 0x00ff_ffff } else { raw };
                    return (bits % 8 == 0).then_some(bits / 8);
                }
            }
        }
        pos = body.checked_add(extra_len(kind, vlen)?)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with `struct thread_info { long flags; long work; u32 status; }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0thread_info\0flags\0syscall_work\0status\0long\0".to_vec();
        let mut types = Vec::new();
        let push = |t: &mut Vec<u8>, v: u32| t.extend_from_slice(&v.to_ne_bytes());
        // [1] INT "long" size 8.
        push(&mut types, 39);
        push(&mut types, 1 << 24);
        push(&mut types, 8);
        push(&mut types, 64);
        // [2] STRUCT thread_info, 3 members, size 24.
        push(&mut types, 1);
        push(&mut types, (4 << 24) | 3);
        push(&mut types, 24);
        for (name, offset_bits) in [(13, 0), (19, 64), (32, 128)] {
            push(&mut types, name);
            push(&mut types, 1);
            push(&mut types, offset_bits);
        }
        let mut btf = Vec::new();
        btf.extend_from_slice(&0xeb9fu16.to_ne_bytes());
        btf.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            btf.extend_from_slice(&v.to_ne_bytes());
        }
        btf.extend_from_slice(&types);
        btf.extend_from_slice(&strings);
        btf
    }

    #[test]
    fn finds_a_member_offset() {
        let btf = sample();
        assert_eq!(member_offset(&btf, "thread_info", "status"), Some(16));
        assert_eq!(member_offset(&btf, "thread_info", "flags"), Some(0));
        assert_eq!(member_offset(&btf, "thread_info", "cpu"), None);
        assert_eq!(member_offset(&btf, "task_struct", "status"), None);
        assert_eq!(member_offset(&btf[..10], "thread_info", "status"), None);
    }

    /// The running kernel's BTF (CONFIG_DEBUG_INFO_BTF, which the eBPF side
    /// needs anyway) has the members enforcer looks up.
    #[test]
    fn running_kernel() {
        let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("vmlinux BTF");
        assert!(member_offset(&btf, "thread_info", "status").is_some());
        assert_eq!(member_offset(&btf, "task_struct", "thread_info"), Some(0));
    }
}
