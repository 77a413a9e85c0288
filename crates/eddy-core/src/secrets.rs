//! Secrets eddy reads from its environment (its root secret, access keys' `secret_env`,
//! webhook signing secrets), kept where no other process can read them.
//!
//! A process's initial environment stays readable as `/proc/PID/environ` for as long as it
//! runs. [`seal`] copies the environment once, at start, and then blanks the named variables in
//! that initial block and removes them from the environment; every later read goes through
//! [`var`], which answers from the copy.

use std::collections::HashMap;
use std::sync::OnceLock;

static SEALED: OnceLock<HashMap<String, String>> = OnceLock::new();

/// Keeps a copy of the environment and removes `names` from the process's own, blanking their
/// values where `/proc/self/environ` shows them.
///
/// # Safety
/// Call it while the process has a single thread (first thing in `main`): it changes the
/// environment, which other threads may be reading.
pub unsafe fn seal(names: &[&str]) {
    let copy: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let _ = SEALED.set(copy);
    for name in names {
        let Ok(key) = std::ffi::CString::new(*name) else {
            continue;
        };
        // SAFETY: single-threaded (the caller's promise). getenv returns a pointer into the
        // environment block, at first the block /proc/self/environ shows; its value is
        // overwritten in place (same length) before the variable is removed.
        unsafe {
            let value = libc_getenv(key.as_ptr());
            if !value.is_null() {
                let len = libc_strlen(value);
                std::ptr::write_bytes(value, b'*', len);
            }
            std::env::remove_var(name);
        }
    }
}

/// The value of environment variable `name`, from the sealed copy when there is one.
pub fn var(name: &str) -> Option<String> {
    match SEALED.get() {
        Some(copy) => copy.get(name).cloned(),
        None => std::env::var(name).ok(),
    }
}

unsafe extern "C" {
    #[link_name = "getenv"]
    fn libc_getenv(name: *const std::ffi::c_char) -> *mut u8;
    #[link_name = "strlen"]
    fn libc_strlen(text: *const u8) -> usize;
}
