//! Who is on the other end of a loopback TCP connection: the Runtime API of a worker answers
//! only connections made by that worker's own processes.
//!
//! `AWS_LAMBDA_RUNTIME_API` is a plain `host:port`, so the API must be TCP and any local process
//! can connect to it. What the kernel knows settles who did: `sock_diag` (or, where that names
//! none, `/proc/net/tcp`) names the socket (its inode) behind the connecting address, and the
//! connection is accepted only if that socket is held by the worker's first process or one of
//! its descendants (found through `/proc/PID/task/TID/children`, and their `/proc/PID/fd`). A
//! process cannot make itself a descendant of another, so neither another function nor another
//! local user passes.

use std::collections::HashSet;
use std::net::SocketAddr;

/// Whether the connection from `peer` to `local` comes from the process tree rooted at
/// `root` (the worker's first process).
pub(crate) fn from_worker(root: u32, peer: SocketAddr, local: SocketAddr) -> bool {
    let Some(inode) = socket_inode(peer, local) else {
        return false;
    };
    let socket = format!("socket:[{inode}]");
    descendants(root).into_iter().any(|pid| holds(pid, &socket))
}

/// The inode of the socket whose local address is `peer` and remote address `local`: asked of
/// the kernel, or read from its table where the kernel names none. Its "none" is no proof: it
/// answers `ENOENT` for a socket it does not have and, alike, where its TCP diagnostics module
/// is missing.
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    match super::sock_diag::inode(peer, local) {
        Ok(Some(inode)) => Some(inode),
        Ok(None) | Err(_) => listed_inode(peer, local),
    }
}

/// [`socket_inode`] from `/proc/net/tcp` (a walk over the kernel's whole table).
fn listed_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let table = match peer {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    let (want_local, want_remote) = (proc_address(peer), proc_address(local));
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&want_local.as_str())
            && fields.get(2) == Some(&want_remote.as_str()))
        .then(|| fields.get(9)?.parse().ok())
        .flatten()
    })
}

/// An address as `/proc/net/tcp` prints it: the address's 32-bit words in host order, in
/// hex, then the port.
fn proc_address(address: SocketAddr) -> String {
    let words: Vec<u32> = match address {
        SocketAddr::V4(a) => vec![u32::from_ne_bytes(a.ip().octets())],
        SocketAddr::V6(a) => a
            .ip()
            .octets()
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let hex: String = words.iter().map(|w| format!("{w:08X}")).collect();
    format!("{hex}:{:04X}", address.port())
}

/// `root` and every process below it.
pub(crate) fn descendants(root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut seen = HashSet::from([root]);
    let mut next = 0;
    while next < found.len() {
        let pid = found[next];
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if seen.insert(child) {
                    found.push(child);
                }
            }
        }
    }
    found
}

/// Whether process `pid` holds a descriptor for `target` (`socket:[INODE]`).
fn holds(pid: u32, target: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target))
}

#[cfg(test)]
mod tests {
    use super::super::sock_diag;
    use super::*;

    #[test]
    fn addresses_print_as_the_kernel_prints_them() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(proc_address(a), "0100007F:1F90");
        }
    }

    /// A connection to a listener bound to `address`, kept open, and its two ends' addresses
    /// (the connecting end's, the listener's); `None` where `address` cannot be bound.
    fn connection(address: &str) -> Option<(Open, SocketAddr, SocketAddr)> {
        let listener = std::net::TcpListener::bind(address).ok()?;
        let local = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(local).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let open = Open {
            _listener: listener,
            _client: client,
            _accepted: accepted,
        };
        Some((open, peer, local))
    }

    /// A connection's sockets, closed when dropped.
    struct Open {
        _listener: std::net::TcpListener,
        _client: std::net::TcpStream,
        _accepted: std::net::TcpStream,
    }

    /// Both ends of a connection, asked of the kernel and read from its table: the same socket,
    /// and one of each end's own.
    fn asked_as_listed(peer: SocketAddr, local: SocketAddr) {
        let asked = sock_diag::inode(peer, local).expect("sock_diag answers");
        assert!(asked.is_some());
        assert_eq!(asked, listed_inode(peer, local));
        let server_side = sock_diag::inode(local, peer).unwrap();
        assert!(server_side.is_some());
        assert_ne!(server_side, asked, "each end is a socket of its own");
        assert_eq!(server_side, listed_inode(local, peer));
    }

    /// The kernel's answer and its table agree on a connection's socket, from either end;
    /// a connection that does not exist has none.
    #[test]
    fn the_kernel_names_a_connections_socket_as_its_table_does() {
        let (open, peer, local) = connection("127.0.0.1:0").unwrap();
        asked_as_listed(peer, local);
        drop(open);
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(sock_diag::inode(nobody, local).unwrap(), None);
        assert_eq!(listed_inode(nobody, local), None);
    }

    /// The same over IPv6 (`/proc/net/tcp6`), where the host has an IPv6 loopback.
    #[test]
    fn the_kernel_names_an_ipv6_connections_socket_as_its_table_does() {
        let Some((_open, peer, local)) = connection("[::1]:0") else {
            eprintln!("not checked here: no IPv6 loopback");
            return;
        };
        asked_as_listed(peer, local);
    }

    /// A connection this process makes to its own listener is this process's; one made by a
    /// child process is the child's and not the other way round.
    #[test]
    fn connections_are_traced_to_the_process_that_made_them() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let me = std::process::id();
        let own = std::net::TcpStream::connect(local).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert!(from_worker(me, peer, local));
        drop(own);

        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket, sys, time\ns = socket.create_connection(('127.0.0.1', {}))\nprint('ok', flush=True)\ntime.sleep(30)",
                    local.port()
                ),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert!(from_worker(me, peer, local), "a child is a descendant");
        assert!(from_worker(child.id(), peer, local));
        // Another tree (here: the child's, asking about a connection of ours) does not pass.
        let own = std::net::TcpStream::connect(local).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert!(!from_worker(child.id(), peer, local));
        drop(own);
        let _ = child.kill();
        let _ = child.wait();
    }
}
