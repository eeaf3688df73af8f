//! The hypervisor's run-time on the board (binary only): boot, then the
//! guest's virtual machine. Uses the portable library and the arch layer.

pub mod boot;
pub mod link_port;
pub mod replica;
pub mod vm;
