//! The virtual GIC.
