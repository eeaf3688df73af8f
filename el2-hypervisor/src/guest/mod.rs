//! Guest loading: the guest bundle and the guest device tree.
