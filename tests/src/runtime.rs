//! The tokio runtime of a lab thread.

/// A current-thread tokio runtime with I/O and timers, for a closure running in a host's namespace.
///
/// Current-thread, so a host costs one thread (the one [`Host::run`](crate::Host::run) or
/// [`Host::spawn`](crate::Host::spawn) started in its namespace), not a pool of workers per host in a lab of twenty.
///
/// # Panics
///
/// When the OS refuses the runtime's resources (an epoll instance, an eventfd): the lab thread could do nothing
/// without them.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("building a tokio runtime for a lab thread: {e}"),
    }
}
