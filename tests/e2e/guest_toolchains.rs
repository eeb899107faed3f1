//! Both guest toolchains build working plugins: the one detected here
//! (used by every other test) and Debian's rustc-web with -Zbuild-std, the
//! route of machines where rustup cannot download the wasm target.

use sluice::plugin::frame;
use sluice::plugin::{Plugin, engine};
use sluice::record::{Record, RecordRef};
use sluice::toolchain::{self, BuildOptions, Toolchain};

use crate::support;

/// Checks a `trap-on-marker` component: passes a record through, rejects
/// one, traps on another.
fn check_trap_on_marker(component: &std::path::Path) {
    let engine = engine();
    let plugin = Plugin::load(&engine, "trap-on-marker", component).unwrap();
    let mut instance = plugin.instantiate(&[]).unwrap();
    let inputs = [
        Record::new(Some(b"k"), Some(b"fine"), Some(1)),
        Record::new(Some(b"k"), Some(b"REJECT me"), Some(2)),
    ];
    let refs: Vec<RecordRef<'_>> = inputs.iter().map(Record::as_ref).collect();
    let out = instance
        .process(&frame::encode(Vec::new(), refs.iter().copied()))
        .unwrap()
        .unwrap();
    let (records, outcomes) = frame::decode_owned(out, &refs).unwrap();
    assert_eq!(records, vec![inputs[0].clone()]);
    assert!(
        matches!(&outcomes[1], frame::Outcome::Rejected { code, .. } if code == "rejected-marker")
    );
    let trap = Record::new(None, Some(b"TRAP"), None);
    let input = frame::encode(Vec::new(), [trap.as_ref()].into_iter());
    let e = instance.process(&input).unwrap_err();
    assert!(e.0.contains("unreachable"), "{e}");
}

#[test]
fn the_detected_toolchain_builds_a_working_plugin() {
    check_trap_on_marker(&support::component("tests/plugins/trap-on-marker"));
}

#[test]
fn debian_rustc_web_with_build_std_builds_a_working_plugin() {
    let toolchain = match Toolchain::debian() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("SKIPPED: Debian's guest toolchain is not installed here ({e})");
            return;
        }
    };
    let target_dir = toolchain::guest_target_dir().with_file_name("guest-target-debian");
    let component = toolchain::build(
        &support::repo().join("tests/plugins/trap-on-marker"),
        &BuildOptions {
            quiet: true,
            toolchain: Some(toolchain),
            target_dir: Some(target_dir),
        },
    )
    .expect("building with Debian's rustc-web");
    check_trap_on_marker(&component);
}
