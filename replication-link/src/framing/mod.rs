//! Framings: how a packet travels over a byte stream (UART, socket) or as
//! an Ethernet frame. Both carry the same packets (with their CRC-32C);
//! a framing only delimits them.

pub mod cobs;
pub mod ethernet;
pub mod stream;
