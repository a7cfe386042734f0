//! io_uring in strace's syntax, and what strace cannot show.
//!
//! strace prints `io_uring_enter(4, 2, 1, IORING_ENTER_GETEVENTS, NULL, 8) = 2`: two requests went
//! in, and that is all it knows. Which requests they were is in the shared submission ring, and
//! what came back is in the completion ring, which the program reads without any system call. So
//! beneath each io_uring_enter the narration adds one line per SQE the call submitted and one per
//! CQE waiting in the completion ring when it returned:
//!
//! ```text
//! io_uring_enter(4, 1, 1, IORING_ENTER_GETEVENTS, NULL, 8) = 1
//! #   submit  IORING_OP_SEND fd=5 addr=0x7f3a1c000000 len=5 msg_flags=MSG_NOSIGNAL user_data=0x51a
//! #   complete IORING_OP_SEND user_data=0x51a res=5 flags=0
//! ```
//!
//! The call itself is printed as strace 6 prints it (checked against `strace -f`); flag bits are
//! named as the kernel headers name them (an older strace shows the newest ones in hex).

use std::fmt::Write as _;

use crate::sys::names;
use crate::sys::trace::{Arg, Call, Phase};
use crate::sys::uring::{self as ring, Cqe, Params, Sqe};

const SETUP_FLAGS: &[(i32, &str)] = &[
    (1 << 0, "IORING_SETUP_IOPOLL"),
    (1 << 1, "IORING_SETUP_SQPOLL"),
    (1 << 2, "IORING_SETUP_SQ_AFF"),
    (1 << 3, "IORING_SETUP_CQSIZE"),
    (1 << 4, "IORING_SETUP_CLAMP"),
    (1 << 5, "IORING_SETUP_ATTACH_WQ"),
    (1 << 6, "IORING_SETUP_R_DISABLED"),
    (1 << 7, "IORING_SETUP_SUBMIT_ALL"),
    (1 << 8, "IORING_SETUP_COOP_TASKRUN"),
    (1 << 9, "IORING_SETUP_TASKRUN_FLAG"),
    (1 << 10, "IORING_SETUP_SQE128"),
    (1 << 11, "IORING_SETUP_CQE32"),
    (1 << 12, "IORING_SETUP_SINGLE_ISSUER"),
    (1 << 13, "IORING_SETUP_DEFER_TASKRUN"),
];

const FEATURES: &[(i32, &str)] = &[
    (1 << 0, "IORING_FEAT_SINGLE_MMAP"),
    (1 << 1, "IORING_FEAT_NODROP"),
    (1 << 2, "IORING_FEAT_SUBMIT_STABLE"),
    (1 << 3, "IORING_FEAT_RW_CUR_POS"),
    (1 << 4, "IORING_FEAT_CUR_PERSONALITY"),
    (1 << 5, "IORING_FEAT_FAST_POLL"),
    (1 << 6, "IORING_FEAT_POLL_32BITS"),
    (1 << 7, "IORING_FEAT_SQPOLL_NONFIXED"),
    (1 << 8, "IORING_FEAT_EXT_ARG"),
    (1 << 9, "IORING_FEAT_NATIVE_WORKERS"),
    (1 << 10, "IORING_FEAT_RSRC_TAGS"),
    (1 << 11, "IORING_FEAT_CQE_SKIP"),
    (1 << 12, "IORING_FEAT_LINKED_FILE"),
    (1 << 13, "IORING_FEAT_REG_REG_RING"),
    (1 << 14, "IORING_FEAT_RECVSEND_BUNDLE"),
    (1 << 15, "IORING_FEAT_MIN_TIMEOUT"),
    (1 << 16, "IORING_FEAT_RW_ATTR"),
    (1 << 17, "IORING_FEAT_NO_IOWAIT"),
];

const ENTER_FLAGS: &[(i32, &str)] = &[
    (1 << 0, "IORING_ENTER_GETEVENTS"),
    (1 << 1, "IORING_ENTER_SQ_WAKEUP"),
    (1 << 2, "IORING_ENTER_SQ_WAIT"),
    (1 << 3, "IORING_ENTER_EXT_ARG"),
    (1 << 4, "IORING_ENTER_REGISTERED_RING"),
    (1 << 5, "IORING_ENTER_ABS_TIMER"),
    (1 << 6, "IORING_ENTER_EXT_ARG_REG"),
    (ring::IORING_ENTER_NO_IOWAIT as i32, "IORING_ENTER_NO_IOWAIT"),
];

const PBUF_FLAGS: &[(i32, &str)] =
    &[(1 << 0, "IOU_PBUF_RING_MMAP"), (ring::IOU_PBUF_RING_INC as i32, "IOU_PBUF_RING_INC")];

const CQE_FLAGS: &[(i32, &str)] = &[
    (ring::IORING_CQE_F_BUFFER as i32, "IORING_CQE_F_BUFFER"),
    (ring::IORING_CQE_F_MORE as i32, "IORING_CQE_F_MORE"),
    (ring::IORING_CQE_F_SOCK_NONEMPTY as i32, "IORING_CQE_F_SOCK_NONEMPTY"),
    (ring::IORING_CQE_F_BUF_MORE as i32, "IORING_CQE_F_BUF_MORE"),
];

/// `IORING_SETUP_*` bits by name (leftovers in hex, as strace does).
pub fn setup_flags(v: u32) -> String {
    names::flag_names(v as i32, SETUP_FLAGS)
}

/// `IOU_PBUF_RING_*` bits (io_uring_buf_reg's flags) by name.
pub fn pbuf_flags(v: u16) -> String {
    names::flag_names(i32::from(v), PBUF_FLAGS)
}

/// `IORING_FEAT_*` bits by name.
pub fn features(v: u32) -> String {
    names::flag_names(v as i32, FEATURES)
}

/// `IORING_ENTER_*` bits (io_uring_enter's flags) by name.
pub fn enter_flags(v: u32) -> String {
    names::flag_names(v as i32, ENTER_FLAGS)
}

/// The opcode's name: `IORING_OP_RECV`.
pub fn op_name(op: u8) -> String {
    match op {
        ring::IORING_OP_NOP => "IORING_OP_NOP".into(),
        ring::IORING_OP_POLL_ADD => "IORING_OP_POLL_ADD".into(),
        ring::IORING_OP_ACCEPT => "IORING_OP_ACCEPT".into(),
        ring::IORING_OP_ASYNC_CANCEL => "IORING_OP_ASYNC_CANCEL".into(),
        ring::IORING_OP_SEND => "IORING_OP_SEND".into(),
        ring::IORING_OP_SENDMSG => "IORING_OP_SENDMSG".into(),
        ring::IORING_OP_RECV => "IORING_OP_RECV".into(),
        other => format!("IORING_OP_{other}"),
    }
}

/// The text inside the parentheses for one io_uring argument; `None` for other arguments.
pub fn arg(a: &Arg<'_>) -> Option<String> {
    Some(match a {
        Arg::UringParams(p) => params(p),
        Arg::UringEnterFlags(f) => enter_flags(*f),
        Arg::UringRegisterOp(op) => match *op {
            ring::IORING_REGISTER_PBUF_RING => "IORING_REGISTER_PBUF_RING".into(),
            ring::IORING_UNREGISTER_PBUF_RING => "IORING_UNREGISTER_PBUF_RING".into(),
            other => other.to_string(),
        },
        // strace leaves the flags out when they are 0 (strace 6.1 calls the field `pad`, its old
        // name in the kernel headers).
        Arg::UringBufReg { ring_addr, entries, bgid, flags: 0 } => {
            format!("{{ring_addr={ring_addr:#x}, ring_entries={entries}, bgid={bgid}}}")
        }
        Arg::UringBufReg { ring_addr, entries, bgid, flags } => {
            let flags = pbuf_flags(*flags);
            format!("{{ring_addr={ring_addr:#x}, ring_entries={entries}, bgid={bgid}, flags={flags}}}")
        }
        _ => return None,
    })
}

/// Arguments printed beneath the call instead of inside it.
pub fn beneath(a: &Arg<'_>) -> bool {
    matches!(a, Arg::UringSubmitted(_) | Arg::UringCompleted(_))
}

/// `{flags=..., sq_thread_cpu=0, ..., sq_off={...}, cq_off={...}}` as strace prints io_uring_params.
fn params(p: &Params) -> String {
    let (s, c) = (&p.sq_off, &p.cq_off);
    format!(
        "{{flags={}, sq_thread_cpu={}, sq_thread_idle={}, sq_entries={}, cq_entries={}, features={}, sq_off={{head={}, \
         tail={}, ring_mask={}, ring_entries={}, flags={}, dropped={}, array={}}}, cq_off={{head={}, tail={}, \
         ring_mask={}, ring_entries={}, overflow={}, cqes={}, flags={}}}}}",
        setup_flags(p.flags),
        p.sq_thread_cpu,
        p.sq_thread_idle,
        p.sq_entries,
        p.cq_entries,
        features(p.features),
        s.head,
        s.tail,
        s.ring_mask,
        s.ring_entries,
        s.flags,
        s.dropped,
        s.array,
        c.head,
        c.tail,
        c.ring_mask,
        c.ring_entries,
        c.overflow,
        c.cqes,
        c.flags
    )
}

/// The lines beneath a finished io_uring_enter: each SQE it submitted, each CQE then waiting.
pub fn lines_beneath(call: &Call<'_>) -> String {
    let mut out = String::new();
    if !matches!(call.phase, Phase::Exit(_)) {
        return out;
    }
    for a in call.args {
        match a {
            Arg::UringSubmitted(sqes) => {
                sqes.iter().for_each(|s| out.push_str(&format!("\n#   submit  {}", submitted(s))));
            }
            Arg::UringCompleted(cqes) => cqes.iter().for_each(|c| out.push_str(&format!("\n#   complete {}", cqe(c)))),
            _ => {}
        }
    }
    out
}

/// One SQE as submitted; a sendmsg with the iovecs its header pointed to, in strace's spelling of
/// a `msghdr`: `IORING_OP_SENDMSG fd=5 msg={msg_iov=[{iov_base=0x7f3a1c000000, iov_len=65536},
/// {iov_base=0x7f3a1c010000, iov_len=4096}], msg_iovlen=2} msg_flags=MSG_NOSIGNAL user_data=0x509`.
pub fn submitted(s: &ring::Submitted) -> String {
    if s.sqe.opcode() != ring::IORING_OP_SENDMSG {
        return sqe(&s.sqe);
    }
    let iov: Vec<String> = s.iov.iter().map(|(base, len)| format!("{{iov_base={base:#x}, iov_len={len}}}")).collect();
    format!(
        "IORING_OP_SENDMSG fd={} msg={{msg_iov=[{}], msg_iovlen={}}} msg_flags={} user_data={:#x}",
        s.sqe.fd(),
        iov.join(", "),
        s.iov.len(),
        names::msg_flags(s.sqe.op_flags() as i32),
        s.sqe.user_data()
    )
}

/// One SQE: `IORING_OP_RECV fd=5 flags=IOSQE_BUFFER_SELECT ioprio=IORING_RECV_MULTISHOT buf_group=0 user_data=0x51b`.
pub fn sqe(s: &Sqe) -> String {
    let mut out = op_name(s.opcode());
    if s.opcode() != ring::IORING_OP_ASYNC_CANCEL && s.opcode() != ring::IORING_OP_NOP {
        let _ = write!(out, " fd={}", s.fd());
    }
    if s.flags() & ring::IOSQE_BUFFER_SELECT != 0 {
        out.push_str(" flags=IOSQE_BUFFER_SELECT");
    }
    let _ = match s.opcode() {
        ring::IORING_OP_ACCEPT => write!(
            out,
            "{} accept_flags={}",
            if s.ioprio() & ring::IORING_ACCEPT_MULTISHOT != 0 { " ioprio=IORING_ACCEPT_MULTISHOT" } else { "" },
            names::accept_flags(s.op_flags() as i32)
        ),
        ring::IORING_OP_RECV => {
            const RECV: &[(i32, &str)] = &[
                (ring::IORING_RECV_MULTISHOT as i32, "IORING_RECV_MULTISHOT"),
                (ring::IORING_RECVSEND_BUNDLE as i32, "IORING_RECVSEND_BUNDLE"),
            ];
            if s.ioprio() != 0 {
                let _ = write!(out, " ioprio={}", names::flag_names(s.ioprio().into(), RECV));
            }
            write!(out, " buf_group={}", s.buf_group())
        }
        ring::IORING_OP_SEND => {
            write!(out, " addr={:#x} len={} msg_flags={}", s.addr(), s.len(), names::msg_flags(s.op_flags() as i32))
        }
        ring::IORING_OP_POLL_ADD => write!(out, " poll_events={}", names::poll_events(s.op_flags() as u16 as i16)),
        ring::IORING_OP_ASYNC_CANCEL if s.op_flags() != 0 => {
            const CANCEL: &[(i32, &str)] = &[(1 << 0, "IORING_ASYNC_CANCEL_ALL"), (1 << 2, "IORING_ASYNC_CANCEL_ANY")];
            write!(out, " cancel_flags={}", names::flag_names(s.op_flags() as i32, CANCEL))
        }
        ring::IORING_OP_ASYNC_CANCEL => write!(out, " addr={:#x}", s.addr()),
        _ => Ok(()),
    };
    let _ = write!(out, " user_data={:#x}", s.user_data());
    out
}

/// One CQE: `IORING_OP_RECV user_data=0x51b res=64 flags=IORING_CQE_F_BUFFER|IORING_CQE_F_MORE buf=3`.
/// (socklab keeps the opcode in the low byte of user_data, so the operation can be named.)
pub fn cqe(c: &Cqe) -> String {
    let res = if c.res < 0 { format!("-{}", names::errno_name(-c.res)) } else { c.res.to_string() };
    let mut out = format!(
        "{} user_data={:#x} res={res} flags={}",
        op_name((c.user_data & 0xff) as u8),
        c.user_data,
        names::flag_names((c.flags & 0xffff) as i32, CQE_FLAGS)
    );
    if c.flags & ring::IORING_CQE_F_BUFFER != 0 {
        let _ = write!(out, " buf={}", c.flags >> 16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::line;
    use std::os::fd::AsFd;

    #[test]
    fn enter_prints_as_strace_then_the_ring_traffic() {
        let cqes = [Cqe {
            user_data: (5 << 8) | u64::from(ring::IORING_OP_RECV),
            res: 64,
            flags: ring::IORING_CQE_F_BUFFER | ring::IORING_CQE_F_MORE | (3 << 16),
        }];
        let args = [
            Arg::Fd(4),
            Arg::Int(0),
            Arg::Int(1),
            Arg::UringEnterFlags(ring::IORING_ENTER_GETEVENTS),
            Arg::Null,
            Arg::Int(8),
            Arg::UringSubmitted(&[]),
            Arg::UringCompleted(&cqes),
        ];
        let text = line(&Call { name: "io_uring_enter", args: &args, phase: Phase::Exit(&Ok(0)) });
        assert_eq!(
            text,
            "io_uring_enter(4, 0, 1, IORING_ENTER_GETEVENTS, NULL, 8) = 0\n#   complete IORING_OP_RECV user_data=0x51b \
             res=64 flags=IORING_CQE_F_BUFFER|IORING_CQE_F_MORE buf=3"
        );
        let fd = std::io::stdin();
        let bundle = sqe(&ring::Sqe::recv_bundle(fd.as_fd(), 0, 5, 0));
        assert!(bundle.contains(" ioprio=IORING_RECV_MULTISHOT|IORING_RECVSEND_BUNDLE buf_group=0 "), "{bundle}");
        let failed = Cqe { user_data: 0x51b, res: -libc::ENOBUFS, flags: 0 };
        assert_eq!(cqe(&failed), "IORING_OP_RECV user_data=0x51b res=-ENOBUFS flags=0");
    }
}
