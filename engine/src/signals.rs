//! Threads started inside a Postgres backend must never receive its signals (SIGINT for cancel,
//! SIGTERM, SIGUSR1…): a handler running on a foreign thread corrupts the backend. New threads
//! inherit the creating thread's signal mask, so thread pools are created with all signals blocked.

struct RestoreMask(libc::sigset_t);

impl Drop for RestoreMask {
    fn drop(&mut self) {
        // SAFETY: restoring a mask previously returned by pthread_sigmask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Run `f` with every blockable signal blocked in the calling thread, restoring the mask after
/// (also when `f` unwinds).
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain libc calls on stack-allocated sigset_t values.
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        RestoreMask(previous)
    };
    f()
}
