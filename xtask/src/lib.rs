//! `cargo xtask`: everything a developer runs on the host.
//!
//! Commands compose: `test` = `setup` (if something is missing) + `build` +
//! host unit tests + QEMU smoke scenarios. Each module does one job; the
//! pure ones (cpio writer, image flattening, QEMU config expansion, console
//! demultiplexing) are unit-tested here.

pub mod bench;
pub mod bench_pair;
pub mod board;
pub mod board_options;
pub mod console;
pub mod cpio;
pub mod cpu_time;
pub mod guest;
pub mod image;
pub mod line_times;
pub mod linkhost;
pub mod lint;
pub mod pair;
pub mod pair_suite;
pub mod paths;
pub mod qemu;
pub mod recording;
pub mod replay_suite;
pub mod runner;
pub mod sdcard;
pub mod setup;
pub mod smoke;
pub mod test_guest;
pub mod util;
