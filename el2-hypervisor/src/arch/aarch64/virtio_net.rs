//! The pair's Ethernet link device: a virtio-net NIC on virtio-mmio, driven
//! by the hypervisor with virtio-drivers' `VirtIONetRaw` (no alloc), as a
//! `replication_link::FrameDevice`. The guest never sees it: its slot is
//! not in the guest's device tree and stage 2 maps nothing there, so a
//! guest access to it is an abort.
//!
//! DMA memory (the virtqueues and the receive buffers) lives in the
//! hypervisor's own image, which is outside guest RAM. The EL2 map is the
//! identity, so an address is its own physical address (the `Hal` is the
//! identity), and the image is Normal Write-Back (`mem::el2_layout`).
//!
//! Cacheable DMA buffers with no cache maintenance: a virtio device is
//! always software (QEMU here, or a hypervisor below us) reading guest
//! memory through a coherent CPU's caches, so virtio-mmio is DMA-coherent
//! by nature; `share`/`unshare` need do nothing. A real NIC that masters
//! the bus (GENET on a Pi 4) is not coherent with the A72's caches: its
//! buffers would need a Non-cacheable region in the EL2 map, or a clean
//! before each transmit and an invalidate after each receive.

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use replication_link::framing::ethernet::MAX_FRAME;
use replication_link::{FrameDevice, Mac};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// Descriptors per virtqueue.
const QUEUE: usize = 16;
/// Receive buffers kept posted to the device.
const RX_BUFFERS: usize = 8;
/// A receive buffer: the virtio-net header and a full frame
/// (virtio-drivers wants at least 1,526 bytes).
const RX_BUFFER: usize = 2048;
/// Pages of DMA memory: two virtqueues of `QUEUE` descriptors take two
/// pages each under the legacy layout QEMU's virtio-mmio offers.
const DMA_PAGES: usize = 8;
const PAGE: usize = 4096;

#[repr(C, align(4096))]
struct Pages<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the pages are handed out once each by `dma_alloc` (a bump
// allocator) and then belong to the device and its driver; single core.
unsafe impl<const N: usize> Sync for Pages<N> {}

static DMA: Pages<{ DMA_PAGES * PAGE }> = Pages(UnsafeCell::new([0; DMA_PAGES * PAGE]));
static DMA_NEXT: AtomicUsize = AtomicUsize::new(0);

/// The board's virtio `Hal`: identity-mapped DMA from a static pool.
pub struct BoardHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned pages of `DMA` that no
// one else uses (each page is handed out once, never reused); addresses
// are physical because the EL2 map is the identity, and the device is
// coherent with the caches (module doc).
unsafe impl Hal for BoardHal {
    fn dma_alloc(pages: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let first = DMA_NEXT.fetch_add(pages, Ordering::Relaxed);
        assert!(first + pages <= DMA_PAGES, "virtio-net: DMA pool exhausted");
        // SAFETY: in bounds by the assert; the pages are zero (never used
        // before: .bss, each handed out once).
        let ptr = unsafe { DMA.0.get().cast::<u8>().add(first * PAGE) };
        (ptr as PhysAddr, NonNull::new(ptr).expect("static"))
    }

    unsafe fn dma_dealloc(_: PhysAddr, _: NonNull<u8>, _: usize) -> i32 {
        // The device lives as long as the board: nothing is ever freed.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).expect("MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as PhysAddr
    }

    unsafe fn unshare(_: PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {}
}

static RX: Pages<{ RX_BUFFERS * RX_BUFFER }> = Pages(UnsafeCell::new([0; RX_BUFFERS * RX_BUFFER]));

/// Why the link NIC could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// No virtio-mmio slot holds a network device.
    NoDevice,
    /// The device refused to start (virtio-drivers' error).
    Init(virtio_drivers::Error),
    /// A transfer failed.
    Io(virtio_drivers::Error),
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::NoDevice => f.write_str(
                "no virtio-net device on virtio-mmio (QEMU: -device virtio-net-device,netdev=...)",
            ),
            NetError::Init(e) => write!(f, "virtio-net did not start: {e}"),
            NetError::Io(e) => write!(f, "virtio-net transfer failed: {e}"),
        }
    }
}

/// The link NIC.
pub struct VirtioNet {
    dev: VirtIONetRaw<BoardHal, MmioTransport<'static>, QUEUE>,
    /// The descriptor token of each posted receive buffer.
    tokens: [Option<u16>; RX_BUFFERS],
    tx: [u8; MAX_FRAME + 16],
}

impl VirtioNet {
    /// Finds the first network device among `slots` (virtio-mmio regions
    /// from the board's device tree) and starts it, with every receive
    /// buffer posted. Call once.
    ///
    /// # Safety
    /// Each slot is a virtio-mmio region of the board that nothing else
    /// drives.
    pub unsafe fn probe(slots: &[(u64, u64)]) -> Result<Self, NetError> {
        for &(base, size) in slots {
            let Some(header) = NonNull::new(base as *mut VirtIOHeader) else {
                continue;
            };
            // SAFETY: forwarded from the caller; the transport checks the
            // magic and version before anything else.
            let Ok(transport) = (unsafe { MmioTransport::new(header, size as usize) }) else {
                continue;
            };
            if transport.device_type() != DeviceType::Network {
                continue;
            }
            let dev = VirtIONetRaw::new(transport).map_err(NetError::Init)?;
            let mut net = Self {
                dev,
                tokens: [None; RX_BUFFERS],
                tx: [0; MAX_FRAME + 16],
            };
            for i in 0..RX_BUFFERS {
                net.post(i)?;
            }
            return Ok(net);
        }
        Err(NetError::NoDevice)
    }

    /// The NIC's MAC address (QEMU: `mac=` of the device).
    pub fn mac(&self) -> Mac {
        self.dev.mac_address()
    }

    fn rx_buffer(i: usize) -> &'static mut [u8] {
        // SAFETY: buffer `i` is lent to the device between `post` and
        // `receive_complete`, and touched by us only outside that window;
        // `i < RX_BUFFERS` at every call site, so it is inside `RX`.
        unsafe {
            core::slice::from_raw_parts_mut(RX.0.get().cast::<u8>().add(i * RX_BUFFER), RX_BUFFER)
        }
    }

    fn post(&mut self, i: usize) -> Result<(), NetError> {
        // SAFETY: buffer `i` is not touched until its token completes.
        let token = unsafe { self.dev.receive_begin(Self::rx_buffer(i)) }.map_err(NetError::Io)?;
        self.tokens[i] = Some(token);
        Ok(())
    }
}

impl FrameDevice for VirtioNet {
    type Error = NetError;

    fn send_frame(&mut self, frame: &[u8]) -> Result<(), NetError> {
        let hdr = self
            .dev
            .fill_buffer_header(&mut self.tx)
            .map_err(NetError::Io)?;
        let end = hdr + frame.len();
        let Some(dst) = self.tx.get_mut(hdr..end) else {
            return Err(NetError::Io(virtio_drivers::Error::InvalidParam));
        };
        dst.copy_from_slice(frame);
        let buf = &self.tx[..end];
        // SAFETY: `buf` is not touched until `transmit_complete` below;
        // QEMU completes a transmission when notified, so the wait is short.
        let token = unsafe { self.dev.transmit_begin(buf) }.map_err(NetError::Io)?;
        while self.dev.poll_transmit() != Some(token) {
            core::hint::spin_loop();
        }
        // SAFETY: the buffer given to `transmit_begin` with this token.
        unsafe { self.dev.transmit_complete(token, buf) }.map_err(NetError::Io)?;
        Ok(())
    }

    fn recv_frame(&mut self, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let Some(token) = self.dev.poll_receive() else {
            return Ok(None);
        };
        let Some(i) = self.tokens.iter().position(|t| *t == Some(token)) else {
            return Err(NetError::Io(virtio_drivers::Error::WrongToken));
        };
        let rx = Self::rx_buffer(i);
        // SAFETY: the buffer posted with this token.
        let (hdr, len) = unsafe { self.dev.receive_complete(token, rx) }.map_err(NetError::Io)?;
        self.tokens[i] = None;
        let n = len.min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rx.get(hdr..hdr + n)) {
            dst.copy_from_slice(src);
        }
        self.post(i)?;
        Ok(Some(n))
    }
}
