//! The hypervisor's heap: used while setting up (building the guest device
//! tree), never in the trap paths.

use linked_list_allocator::LockedHeap;

/// Heap size: the guest device tree and boot-time tables fit many times over.
const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);

static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the heap area to the allocator. Call once, before any allocation.
pub fn init() {
    // SAFETY: called once on the boot core before anything allocates;
    // HEAP_AREA is used by nothing else.
    unsafe {
        ALLOCATOR
            .lock()
            .init(core::ptr::addr_of_mut!(HEAP_AREA) as *mut u8, HEAP_SIZE)
    };
}
