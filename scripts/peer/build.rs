//! Compiles the Eigen cell (`eigen_rnn.cpp`) as RTNeural's users build it: `-O3 -march=native`.

fn main() {
    println!("cargo::rerun-if-changed=eigen_rnn.cpp");
    println!("cargo::rerun-if-env-changed=EIGEN_INCLUDE");
    let include = std::env::var("EIGEN_INCLUDE").unwrap_or_else(|_| "/usr/include/eigen3".into());
    cc::Build::new()
        .cpp(true)
        .file("eigen_rnn.cpp")
        .include(include)
        // The (128, 256) weights are 384 KiB, a member of a heap-allocated cell: Eigen's check
        // for matrices on the stack does not apply.
        .define("EIGEN_STACK_ALLOCATION_LIMIT", "0")
        .flag("-std=c++17")
        .flag("-O3")
        .flag("-march=native")
        .opt_level(3)
        // Eigen's headers warn under `-Wall -Wextra`, cc's defaults: noise about Eigen.
        .warnings(false)
        .compile("eigen_rnn");
}
