//! A writer for the "newc" cpio format that Linux unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Deterministic by construction: inode numbers count up, mtime is 0,
//! owner is root, so the same inputs give the same bytes.

/// Builds an archive entry by entry.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Cpio {
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            next_ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, S_IFDIR | 0o755, &[], (0, 0));
        self
    }
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | mode, data, (0, 0));
        self
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes(), (0, 0));
        self
    }
    pub fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(name, S_IFCHR | mode, &[], (major, minor));
        self
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let mut c = Cpio::new();
        c.file("init", 0o755, b"hi");
        let a = c.finish();
        // magic, then 13 eight-digit hex fields, then "init\0", padded to 4.
        assert_eq!(&a[..6], b"070701");
        assert_eq!(&a[6..14], b"00000001"); // ino
        assert_eq!(&a[14..22], b"000081ed"); // regular file, 0755
        assert_eq!(&a[54..62], b"00000002"); // file size
        assert_eq!(&a[94..102], b"00000005"); // name size with NUL
        assert_eq!(&a[110..115], b"init\0");
        assert_eq!(a.len() % 4, 0);
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn deterministic() {
        let build = || {
            let mut c = Cpio::new();
            c.dir("dev")
                .char_device("dev/console", 0o600, 5, 1)
                .symlink("sh", "busybox");
            c.finish()
        };
        assert_eq!(build(), build());
    }
}
