//! The VM's decisions that are not a trap's outcome nor the replica
//! engine's, as host-tested library code: so far the guest's interrupt
//! lines ([`lines`]). The board reads the counter and arms the timer; what
//! the lines are at a time is decided here.

pub mod lines;
