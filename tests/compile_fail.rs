//! Dimensions live in the types: every mismatch below (a stack's layers whose sizes do not chain
//! among them) is a compile error, pinned by its reviewed `.stderr` file; so are the seals (no
//! other non-linearity, no access to the kind the kernels read). The pass case makes trybuild build (not only check) the cases, so
//! the `I + H` width check of `from_concatenated`, which fires when the call is built, is
//! exercised too.

#[test]
// The compiler lists the implementations it knows in its diagnostics, and the optional
// features add some: the `.stderr` files are those of the default features.
#[cfg_attr(
    feature = "onnx",
    ignore = "the .stderr files are the default features' diagnostics"
)]
fn dimensions_are_checked_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/*.rs");
}
