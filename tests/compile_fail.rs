//! Dimensions live in the types: every mismatch below is a compile error, pinned by its
//! reviewed `.stderr` file. The pass case makes trybuild build (not only check) the cases, so
//! the `I + H` width check of `from_concatenated`, which fires when the call is built, is
//! exercised too.

#[test]
fn dimensions_are_checked_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/*.rs");
}
