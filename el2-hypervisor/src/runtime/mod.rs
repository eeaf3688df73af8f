//! The hypervisor's run-time on the board (binary only): boot, then the
//! guest's virtual machine. Uses the portable library (the replica
//! session, `el2_hypervisor::replica::session`, included) and the arch
//! layer.

pub mod boot;
pub mod vm;
