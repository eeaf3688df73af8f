//! Guest loading: the guest bundle and the guest device tree.

pub mod bundle;
pub mod dtb;
pub mod layout;
