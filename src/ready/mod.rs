//! Floor 3: safe types for waiting on many sockets at once, over the kernel objects in `sys`.
//!
//! - [`uring`]: an io_uring instance with a provided-buffer ring, in the echo server's terms.

#[cfg(socklab_uring)]
pub mod uring;
