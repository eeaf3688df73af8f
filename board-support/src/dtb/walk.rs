//! Walking the device tree with each node's bus in hand, so that a `reg`
//! becomes a CPU physical address.
//!
//! A node's `reg` is in its parent bus's address space; a bus node's
//! `ranges` maps its children's addresses into its own parent's
//! (Devicetree Specification v0.4, 2.3.8): on the Raspberry Pi 4 the
//! peripherals under `/soc` sit at bus address 0x7e00_0000, which the CPU
//! sees at 0xfe00_0000. The `fdt` crate reads `reg` with the parent's cell
//! sizes but does not translate; this module does.

use crate::dtb::Region;
use fdt::Fdt;
use fdt::node::FdtNode;

/// Most `ranges` entries kept for one bus (the Pi 4's `/soc` has 3).
const MAX_RANGES: usize = 8;
/// Deepest nesting walked (the Pi 4's tree is 5 deep).
const MAX_DEPTH: usize = 8;

/// One `ranges` entry: child bus address, parent bus address, size.
#[derive(Clone, Copy, Debug)]
struct Range {
    child: u64,
    parent: u64,
    size: u64,
}

/// How a bus's addresses reach its parent's.
#[derive(Clone, Debug)]
enum Map {
    /// The root: CPU physical addresses.
    Root,
    /// An empty `ranges`: the same addresses.
    Identity,
    /// These windows.
    Ranges(heapless::Vec<Range, MAX_RANGES>),
    /// No `ranges`: the children are not memory-mapped (e.g. `/cpus`).
    Opaque,
}

/// The bus a node sits on, with the buses above it.
pub struct Bus<'p> {
    map: Map,
    /// The bus node's `#address-cells`: how wide its children's addresses are.
    cells: usize,
    up: Option<&'p Bus<'p>>,
}

impl Bus<'_> {
    /// The CPU physical address of bus address `addr` (`None` if no
    /// window of some bus on the way up maps it).
    pub fn translate(&self, addr: u64) -> Option<u64> {
        let mut bus = self;
        let mut addr = addr;
        loop {
            match &bus.map {
                Map::Root => return Some(addr),
                Map::Opaque => return None,
                Map::Identity => {}
                Map::Ranges(ranges) => {
                    let r = ranges
                        .iter()
                        .find(|r| addr >= r.child && addr - r.child < r.size)?;
                    addr = r.parent + (addr - r.child);
                }
            }
            bus = bus.up?;
        }
    }

    /// The node's `reg` entries as CPU physical regions; `None` without a
    /// `reg`, or when an address does not translate.
    pub fn regs(&self, node: FdtNode<'_, '_>) -> Option<heapless::Vec<Region, 8>> {
        let mut out = heapless::Vec::new();
        for r in node.reg()? {
            let base = self.translate(r.starting_address as u64)?;
            let _ = out.push(Region::new(base, r.size.unwrap_or(0) as u64));
        }
        Some(out)
    }
}

/// Big-endian cells as one number (1 or 2 cells; more are refused).
pub fn number(cells: &[u8]) -> Option<u64> {
    match cells.len() {
        4 => Some(u32::from_be_bytes(cells.try_into().ok()?) as u64),
        8 => Some(u64::from_be_bytes(cells.try_into().ok()?)),
        _ => None,
    }
}

/// The map a node's `ranges` gives its children; `parent_cells` is the
/// node's parent's `#address-cells` (the width of a range's parent address).
fn child_map(node: FdtNode<'_, '_>, parent_cells: usize) -> Map {
    let Some(p) = node.property("ranges") else {
        return Map::Opaque;
    };
    if p.value.is_empty() {
        return Map::Identity;
    }
    let own = node.cell_sizes();
    let (ca, pa, sz) = (own.address_cells * 4, parent_cells * 4, own.size_cells * 4);
    let entry = ca + pa + sz;
    if entry == 0 || !p.value.len().is_multiple_of(entry) {
        return Map::Opaque;
    }
    let mut ranges = heapless::Vec::new();
    for e in p.value.chunks_exact(entry) {
        let (Some(child), Some(parent), Some(size)) = (
            number(&e[..ca]),
            number(&e[ca..ca + pa]),
            number(&e[ca + pa..]),
        ) else {
            // A PCI-style 3-cell address: nothing the hypervisor maps.
            return Map::Opaque;
        };
        let _ = ranges.push(Range {
            child,
            parent,
            size,
        });
    }
    Map::Ranges(ranges)
}

/// Calls `f` on every node in tree order with the bus it sits on, until
/// `f` returns `Some`.
pub fn find_map<'b, 'a: 'b, T>(
    fdt: &'b Fdt<'a>,
    mut f: impl FnMut(FdtNode<'b, 'a>, &Bus<'_>) -> Option<T>,
) -> Option<T> {
    let root = fdt.find_node("/")?;
    let bus = Bus {
        map: Map::Root,
        cells: root.cell_sizes().address_cells,
        up: None,
    };
    if let Some(t) = f(root, &bus) {
        return Some(t);
    }
    root.children().find_map(|c| visit(c, &bus, 1, &mut f))
}

fn visit<'b, 'a: 'b, T>(
    node: FdtNode<'b, 'a>,
    bus: &Bus<'_>,
    depth: usize,
    f: &mut impl FnMut(FdtNode<'b, 'a>, &Bus<'_>) -> Option<T>,
) -> Option<T> {
    if let Some(t) = f(node, bus) {
        return Some(t);
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    let inner = Bus {
        map: child_map(node, bus.cells),
        cells: node.cell_sizes().address_cells,
        up: Some(bus),
    };
    node.children().find_map(|c| visit(c, &inner, depth + 1, f))
}

/// Whether a node is in use (`status` absent, `okay` or `ok`).
pub fn enabled(node: FdtNode<'_, '_>) -> bool {
    node.property("status")
        .and_then(|p| p.as_str())
        .is_none_or(|s| s == "okay" || s == "ok")
}

/// Whether two handles are the same node (they share their property bytes).
pub fn same_node(a: FdtNode<'_, '_>, b: FdtNode<'_, '_>) -> bool {
    let first = |n: FdtNode<'_, '_>| n.properties().next().map(|p| p.value.as_ptr());
    a.name == b.name && first(a) == first(b)
}
