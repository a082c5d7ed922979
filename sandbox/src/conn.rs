//! Socket-level control that tiny_http does not offer: closing one client
//! connection without answering (the "connection closed" faults, refusing
//! oversized bodies), closing every connection when the sandbox stops, a
//! deeper listen queue so a burst of connections is not dropped, and no Nagle
//! delay.
//!
//! tiny_http owns the accepted sockets and exposes only the peer address, so a
//! connection is found by its (local, peer) address pair among the process's
//! descriptors and shut down (never closed: the descriptor stays tiny_http's,
//! which then sees end-of-file and cleans up as for any client that went away).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    getpeername, getsockname, listen, setsockopt, shutdown, sockopt, Backlog, Shutdown,
    SockaddrLike, SockaddrStorage,
};

/// Raises the listen queue of `listener` to the system maximum, and turns
/// Nagle's algorithm off for the connections it accepts (Linux copies the
/// option to them): tiny_http writes headers and a longer body separately, and
/// the second write would otherwise wait for the client's delayed ACK (40 ms).
pub(crate) fn tune_listener(listener: &TcpListener) {
    // Best effort: without either, bursts and large answers are slower, not wrong.
    let _ = listen(listener, Backlog::MAXCONN);
    let _ = setsockopt(listener, sockopt::TcpNoDelay, &true);
}

/// Stops accepting: pending and later connection attempts are refused and
/// tiny_http's accept loop ends.
pub(crate) fn stop_listening(listener: &TcpListener) {
    let _ = shutdown(listener.as_raw_fd(), Shutdown::Read);
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// The (local, peer) addresses of the connected socket `fd`, if it is one.
fn addresses(fd: i32) -> Option<(SocketAddr, SocketAddr)> {
    let mine = getsockname::<SockaddrStorage>(fd).ok()?;
    mine.family()?;
    let mine = to_std(&mine)?;
    let peer = to_std(&getpeername::<SockaddrStorage>(fd).ok()?)?;
    Some((mine, peer))
}

fn same_local(mine: SocketAddr, local: SocketAddr) -> bool {
    mine.port() == local.port() && (local.ip().is_unspecified() || mine.ip() == local.ip())
}

/// The descriptors of connected TCP sockets whose local address is `local`
/// (or whose local port is `local`'s when it listens on all interfaces), with
/// their peer addresses. Each socket shows up under every descriptor that
/// refers to it (tiny_http keeps one for reading and one for writing).
fn connections_of(local: SocketAddr) -> Vec<(i32, SocketAddr)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .map(|p| p.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if !is_socket {
            continue;
        }
        if let Some((mine, peer)) = addresses(fd) {
            if same_local(mine, local) {
                out.push((fd, peer));
            }
        }
    }
    out
}

/// Shuts down `fd` if it still is the socket between `local` and `peer`: once
/// one descriptor of a connection is shut down, tiny_http closes the others
/// and their numbers may already belong to another socket.
fn shutdown_if(fd: i32, local: SocketAddr, peer: SocketAddr) -> bool {
    match addresses(fd) {
        Some((mine, p)) if same_local(mine, local) && p == peer => {
            let _ = shutdown(fd, Shutdown::Both);
            true
        }
        _ => false,
    }
}

/// Shuts down the connection between the sandbox at `local` and `peer`.
/// Returns whether it was found.
pub(crate) fn close_connection(local: SocketAddr, peer: SocketAddr) -> bool {
    // One descriptor is enough: shutdown acts on the socket, not the descriptor.
    connections_of(local)
        .into_iter()
        .filter(|(_, p)| *p == peer)
        .any(|(fd, p)| shutdown_if(fd, local, p))
}

/// Shuts down every client connection of the sandbox at `local`.
pub(crate) fn close_all(local: SocketAddr) {
    for (fd, peer) in connections_of(local) {
        shutdown_if(fd, local, peer);
    }
}
