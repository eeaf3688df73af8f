//! Whole-crate tests: links over simulated faulty channels, link unit
//! scenarios, random input for every decoder, the memory table.

mod links;
mod memory;
mod random_input;
mod scenarios;
mod sim;
