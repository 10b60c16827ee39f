//! Property tests of the fuzz entry points: what the fuzz targets run, on
//! arbitrary text, text made of the readers' tokens, and mutations of valid
//! examples; and validation of mutated examples against a fake host.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::config::proptests::{fragment, mutated_example};
use crate::config::{check_located, parse_policy};

/// Both readers and the sniffing loader on one text, as the fuzz targets do
/// (what parses is validated against a fake host there).
fn read_everywhere(name: &str, text: &str) {
    super::cgconfig(text);
    super::toml(text);
    super::policy(text.as_bytes());
    check_located(name, &parse_policy(text.as_bytes(), Path::new(name)));
}

proptest! {
    #[test]
    fn readers_take_any_text(text in any::<String>()) {
        read_everywhere("any", &text);
    }

    #[test]
    fn readers_take_text_made_of_their_tokens(
        parts in prop::collection::vec(fragment(), 0..40)
    ) {
        read_everywhere("tokens", &parts.concat());
    }

    #[test]
    fn readers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        super::policy(&bytes);
    }

    #[test]
    fn readers_take_mutated_examples((name, text) in mutated_example()) {
        read_everywhere(name, &text);
    }

}

/// Mutated examples that still parse are validated against a host: never a
/// panic, nothing written, and every error points into the file.
#[test]
fn plan_takes_mutated_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = super::fake_hybrid_host(tmp.path());
    let before = tree(tmp.path());
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&mutated_example(), |(name, text)| {
            let Ok(policy) = parse_policy(text.as_bytes(), Path::new(name)) else {
                return Ok(());
            };
            match crate::plan::validate(&cg, policy, None, crate::plan::Kernel::Unchecked) {
                Ok(plan) => {
                    let _ = crate::plan::Diff::new(&cg, &plan, &Default::default()).render();
                }
                Err(err) => {
                    prop_assert!(err.span().is_some(), "no position: {err:?}");
                    prop_assert!(err.to_string().starts_with(&format!("{name}:")), "{err}");
                    prop_assert!(err.is_user_error(), "{err}");
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(tree(tmp.path()), before, "plan changed the host");
}

/// Every path below `root`, for "nothing changed".
fn tree(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}
