// Compiles the one piece of C kvick needs: long double arithmetic for
// INCRBYFLOAT (see src/native/longdouble.c).
fn main() {
    println!("cargo:rerun-if-changed=src/native/longdouble.c");
    cc::Build::new().file("src/native/longdouble.c").opt_level(2).compile("kvick_native");
}
