//! Test-only exports, compiled only with the `test-hooks` cargo feature (never in the release
//! library; `make test-symbols` checks that no `cellar_test_*` symbol is exported). Excluded
//! from include/cellar.h through cbindgen.toml.

use std::cell::Cell;

thread_local! {
    /// Number of upcoming boundary calls on this thread that must panic.
    static PANIC_NEXT: Cell<u32> = const { Cell::new(0) };
}

/// Called first thing inside every status-returning boundary's catch region: panics when the
/// calling thread armed it with `cellar_test_panic_next`.
pub(crate) fn maybe_panic(name: &'static str) {
    let armed = PANIC_NEXT.with(|c| {
        let n = c.get();
        if n > 0 {
            c.set(n - 1);
        }
        n > 0
    });
    if armed {
        panic!("test hook: forced panic in {name}");
    }
}

/// Makes the next `count` status-returning Cellar calls on the calling thread panic inside the
/// C boundary's catch region (they must return `CELLAR_ERR_INTERNAL`). 0 disarms.
#[no_mangle]
pub extern "C" fn cellar_test_panic_next(count: u32) {
    PANIC_NEXT.with(|c| c.set(count));
}
