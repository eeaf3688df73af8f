//! The VM's decisions that are not a trap's outcome nor the replica
//! engine's, as host-tested library code: the guest's interrupt lines
//! ([`lines`]), and guest time and the hypervisor's sleeps over the
//! hardware trait's counter and EL2 timer ([`clock`]).

pub mod clock;
pub mod lines;
