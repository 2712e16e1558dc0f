//! The heap settings keep freed blocks for reuse, and `release_free_memory` hands them back: measured
//! on this process's resident memory (`/proc/self/statm`), alone in its own test binary.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1 << 20) as f64
}

#[test]
fn freed_memory_stays_until_released() {
    varsr::alloc::tune_heap();
    // 256 MiB in 2 MiB blocks (below the 32 MiB mmap threshold), every page touched.
    let blocks: Vec<Vec<u8>> = (0..128).map(|i| vec![i as u8 | 1; 2 << 20]).collect();
    let loaded = resident_mib();
    drop(blocks);
    let after_free = resident_mib();
    varsr::alloc::release_free_memory();
    let released = resident_mib();
    eprintln!(
        "resident: {loaded:.0} MiB loaded, {after_free:.0} after free, {released:.0} after release"
    );
    assert!(
        loaded - after_free < 32.0,
        "freed blocks went back to the kernel at once"
    );
    assert!(
        after_free - released > 200.0,
        "release kept the freed blocks"
    );
}
