//! One TCP socket's inode, asked of the kernel by its addresses over `NETLINK_SOCK_DIAG` (as
//! `ss` does): a lookup in the kernel's connection table. Reading `/proc/net/tcp` instead walks
//! every bucket of that table, which on this project's 24 GiB machine took 4.4 ms however few
//! connections there were — paid twice by every new worker (its long poll's connection and its
//! answers').

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The request's sequence number, which the kernel's answer carries back.
const SEQUENCE: u32 = 1;
/// `INET_DIAG_NOCOOKIE`: the socket is named by its addresses alone.
const NO_COOKIE: [u32; 2] = [u32::MAX; 2];

/// `struct inet_diag_sockid` (linux/inet_diag.h): ports and addresses in network order.
#[repr(C)]
struct SockId {
    sport: u16,
    dport: u16,
    src: [u32; 4],
    dst: [u32; 4],
    interface: u32,
    cookie: [u32; 2],
}

/// `struct inet_diag_req_v2`.
#[repr(C)]
struct Request {
    family: u8,
    protocol: u8,
    extensions: u8,
    pad: u8,
    states: u32,
    id: SockId,
}

/// Where `struct inet_diag_msg` keeps the inode: after four one-byte fields, the socket's id,
/// and four 32-bit fields (expiry, queues, uid).
const INODE_AT: usize = 4 + size_of::<SockId>() + 4 * 4;

#[repr(C)]
struct Message {
    header: libc::nlmsghdr,
    request: Request,
}

/// The address's words as the kernel keeps them (network order), an IPv4 address in the
/// first.
fn words(address: SocketAddr) -> [u32; 4] {
    let mut words = [0; 4];
    match address {
        SocketAddr::V4(a) => words[0] = u32::from_ne_bytes(a.ip().octets()),
        SocketAddr::V6(a) => {
            for (word, bytes) in words.iter_mut().zip(a.ip().octets().chunks(4)) {
                *word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
    }
    words
}

/// The inode of the TCP socket whose own address is `local` and whose peer is `remote`;
/// `Ok(None)` when the kernel names none (`ENOENT`: no such socket, or no TCP diagnostics
/// module to ask). `Err` when the kernel could not be asked (no `sock_diag` here).
pub(crate) fn inode(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u64>> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let family = match local {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let message = Message {
        header: libc::nlmsghdr {
            nlmsg_len: size_of::<Message>() as u32,
            nlmsg_type: SOCK_DIAG_BY_FAMILY,
            // Not a dump: one socket, found by its addresses.
            nlmsg_flags: libc::NLM_F_REQUEST as u16,
            nlmsg_seq: SEQUENCE,
            nlmsg_pid: 0,
        },
        request: Request {
            family: family as u8,
            protocol: libc::IPPROTO_TCP as u8,
            extensions: 0,
            pad: 0,
            states: u32::MAX,
            id: SockId {
                sport: local.port().to_be(),
                dport: remote.port().to_be(),
                src: words(local),
                dst: words(remote),
                interface: 0,
                cookie: NO_COOKIE,
            },
        },
    };
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value (the kernel's address).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: the buffer and the address are valid for the lengths given, for the call.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            (&raw const message).cast(),
            size_of::<Message>(),
            0,
            (&raw const kernel).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = [0u8; 1024];
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut sender: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut sender_len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: the buffer and the address are valid for the lengths given, for the call.
    let received = unsafe {
        libc::recvfrom(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
            (&raw mut sender).cast(),
            &raw mut sender_len,
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    // Only the kernel's answer counts (port 0); what another process sent is not one.
    if sender.nl_pid != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a sock_diag answer not from the kernel",
        ));
    }
    parse(&buffer[..received as usize])
}

/// The inode in the kernel's answer; `Ok(None)` for "no such socket".
fn parse(answer: &[u8]) -> io::Result<Option<u64>> {
    let header_len = size_of::<libc::nlmsghdr>();
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "a malformed sock_diag answer");
    if answer.len() < header_len {
        return Err(malformed());
    }
    // SAFETY: at least a header's bytes; read unaligned, as the buffer has no alignment.
    let header: libc::nlmsghdr = unsafe { std::ptr::read_unaligned(answer.as_ptr().cast()) };
    let len = header.nlmsg_len as usize;
    if header.nlmsg_seq != SEQUENCE || len < header_len || len > answer.len() {
        return Err(malformed());
    }
    let body = &answer[header_len..len];
    if header.nlmsg_type == libc::NLMSG_ERROR as u16 {
        let code = body
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(malformed)?;
        return match -code {
            libc::ENOENT => Ok(None),
            errno => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    if header.nlmsg_type != SOCK_DIAG_BY_FAMILY {
        return Err(malformed());
    }
    let inode = body.get(INODE_AT..INODE_AT + 4).ok_or_else(malformed)?;
    let inode = u32::from_ne_bytes([inode[0], inode[1], inode[2], inode[3]]);
    Ok(Some(u64::from(inode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message: a header of `kind` and sequence `seq` before `body`.
    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = (size_of::<libc::nlmsghdr>() + body.len()) as u32;
        let mut bytes = Vec::new();
        bytes.extend(len.to_ne_bytes());
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(0u16.to_ne_bytes());
        bytes.extend(seq.to_ne_bytes());
        bytes.extend(0u32.to_ne_bytes());
        bytes.extend(body);
        bytes
    }

    #[test]
    fn answers_are_read_for_their_inode_and_anything_else_is_not_one() {
        let mut found = vec![0u8; INODE_AT];
        found.extend(4242u32.to_ne_bytes());
        assert_eq!(
            parse(&message(SOCK_DIAG_BY_FAMILY, SEQUENCE, &found)).unwrap(),
            Some(4242)
        );
        let missing = (-libc::ENOENT).to_ne_bytes();
        assert_eq!(
            parse(&message(libc::NLMSG_ERROR as u16, SEQUENCE, &missing)).unwrap(),
            None,
            "no such socket"
        );
        let refused = (-libc::EPERM).to_ne_bytes();
        assert!(parse(&message(libc::NLMSG_ERROR as u16, SEQUENCE, &refused)).is_err());
        // Malformed: short, cut before the inode, another request's answer, another type,
        // a length past what arrived.
        assert!(parse(&[0u8; 8]).is_err());
        assert!(parse(&message(SOCK_DIAG_BY_FAMILY, SEQUENCE, &found[..INODE_AT])).is_err());
        assert!(parse(&message(SOCK_DIAG_BY_FAMILY, SEQUENCE + 1, &found)).is_err());
        assert!(parse(&message(3, SEQUENCE, &found)).is_err());
        let whole = message(SOCK_DIAG_BY_FAMILY, SEQUENCE, &found);
        assert!(parse(&whole[..whole.len() - 1]).is_err());
        // A length shorter than its own header.
        let mut short = whole.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(parse(&short).is_err());
    }
}
