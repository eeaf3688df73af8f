//! Guest loading: the guest bundle and the guest device tree.

pub mod bundle;
pub mod counter_patch;
pub mod dtb;
pub mod layout;
