//! `system::keep_freed_memory`: a step's megabyte tensors come from the heap and their
//! memory stays with the process when freed (alone in its test binary, so that no other
//! test allocates while the allocator's counters are read).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_step_sized_block_comes_from_the_heap_and_stays_with_the_process() {
    // SAFETY (each mallinfo2 below): it reads the allocator's counters.
    let counters = || unsafe { libc::mallinfo2() };
    // An 8 MB block is above glibc's default mmap threshold (128 KiB, raised at most to
    // the size of a block freed): by default it is mmaped, and unmapped when freed.
    let mapped = counters().hblkhd;
    let block = std::hint::black_box(vec![1u8; 8 << 20]);
    assert!(counters().hblkhd >= mapped + (8 << 20), "glibc's default: the block is mmaped");
    drop(block);
    assert_eq!(counters().hblkhd, mapped, "glibc's default: the block is unmapped when freed");

    // 24 MB: by default above the threshold the free just raised (to the 8 MB block's
    // size), so mmaped, and beyond the trim threshold (twice that), so trimmed when freed.
    homeonorm::engine::system::keep_freed_memory();
    let block = std::hint::black_box(vec![1u8; 24 << 20]);
    assert_eq!(counters().hblkhd, mapped, "the block was mmaped");
    drop(block);
    let free_in_heap = counters().fordblks;
    assert!(free_in_heap >= 24 << 20, "the freed block left the heap: {free_in_heap} bytes free in it");
}
