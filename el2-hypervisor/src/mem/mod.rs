//! Memory: stage-2 translation and the hypervisor's own EL2 map.
