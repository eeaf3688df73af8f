//! Pairing check: two boards pair only when they run the same protocol,
//! hypervisor build, guest image and configuration, in complementary roles.

use core::fmt;

use crate::message::{Digest, Hello, Role};

/// Why a peer was refused. Both sides compute it from the two Hellos, so
/// both consoles print the same reason.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The protocol versions differ.
    ProtocolVersion {
        /// Ours.
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// The hypervisor builds differ.
    Build,
    /// The guest images differ.
    GuestImage,
    /// The configurations differ. Both digests are carried so that the
    /// layer above, which knows what its configuration digest is made of,
    /// can name the part that differs.
    Configuration {
        /// Ours.
        ours: Digest,
        /// The peer's.
        theirs: Digest,
    },
    /// The roles do not pair (two primaries, two backups, ...): one log
    /// source and one log sink are needed.
    Roles {
        /// Ours.
        ours: Role,
        /// The peer's.
        theirs: Role,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProtocolVersion { ours, theirs } => {
                write!(f, "protocol version differs: ours {ours}, peer {theirs}")
            }
            Self::Build => f.write_str("hypervisor build differs"),
            Self::GuestImage => f.write_str("guest image differs"),
            Self::Configuration { .. } => f.write_str("configuration differs"),
            Self::Roles { ours, theirs } => {
                write!(f, "roles do not pair: ours {ours:?}, peer {theirs:?}")
            }
        }
    }
}

impl core::error::Error for Refusal {}

impl Hello {
    /// Checks whether we (`self`) may pair with the sender of `peer`.
    /// `session` and `seen_peer` are not compared.
    ///
    /// # Errors
    ///
    /// The first difference found, in this order: protocol version, build,
    /// guest image, configuration, roles.
    pub fn check_peer(&self, peer: &Hello) -> Result<(), Refusal> {
        if self.version != peer.version {
            return Err(Refusal::ProtocolVersion {
                ours: self.version,
                theirs: peer.version,
            });
        }
        if self.build != peer.build {
            return Err(Refusal::Build);
        }
        if self.guest_image != peer.guest_image {
            return Err(Refusal::GuestImage);
        }
        if self.config != peer.config {
            return Err(Refusal::Configuration {
                ours: self.config,
                theirs: peer.config,
            });
        }
        if self.role.is_source() == peer.role.is_source() {
            return Err(Refusal::Roles {
                ours: self.role,
                theirs: peer.role,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PROTOCOL_VERSION;

    fn hello(role: Role) -> Hello {
        Hello::new(role, 1, [1; 32], [2; 32], [3; 32])
    }

    #[test]
    fn matching_pair_is_accepted_both_ways() {
        let p = hello(Role::Primary);
        let mut b = hello(Role::Backup);
        b.session = 99;
        b.seen_peer = true;
        assert_eq!(p.check_peer(&b), Ok(()));
        assert_eq!(b.check_peer(&p), Ok(()));
        assert_eq!(
            hello(Role::Replayer).check_peer(&hello(Role::Backup)),
            Ok(())
        );
        assert_eq!(
            hello(Role::Recorder).check_peer(&hello(Role::Primary)),
            Ok(())
        );
    }

    #[test]
    fn each_difference_is_named() {
        let p = hello(Role::Primary);
        let mut b = hello(Role::Backup);
        b.version = 1; // a peer that predates `Released`
        assert_eq!(
            p.check_peer(&b),
            Err(Refusal::ProtocolVersion {
                ours: PROTOCOL_VERSION,
                theirs: 1
            })
        );
        let mut b = hello(Role::Backup);
        b.build[31] ^= 1;
        assert_eq!(p.check_peer(&b), Err(Refusal::Build));
        assert_eq!(b.check_peer(&p), Err(Refusal::Build));
        let mut b = hello(Role::Backup);
        b.guest_image[0] ^= 1;
        assert_eq!(p.check_peer(&b), Err(Refusal::GuestImage));
        let mut b = hello(Role::Backup);
        b.config[7] ^= 1;
        assert_eq!(
            p.check_peer(&b),
            Err(Refusal::Configuration {
                ours: p.config,
                theirs: b.config
            })
        );
        assert_eq!(
            p.check_peer(&hello(Role::Replayer)),
            Err(Refusal::Roles {
                ours: Role::Primary,
                theirs: Role::Replayer
            })
        );
        assert!(matches!(
            hello(Role::Backup).check_peer(&hello(Role::Recorder)),
            Err(Refusal::Roles { .. })
        ));
    }
}
