//! Who the process runs as: looking up a user and a group (by name or number), switching to
//! them once a server started as root has bound its sockets, and the file mode creation mask.

use std::ffi::{CStr, CString};
use std::io;

/// A user and group to run as, resolved from what the command line named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The user's name, for its supplementary groups (absent for a number with no entry).
    pub user_name: Option<CString>,
}

/// Resolves `user` (a name or a number) and `group` (a name or a number; default: the user's
/// primary group, or the current group when no user is named either).
pub fn resolve(user: Option<&str>, group: Option<&str>) -> io::Result<Identity> {
    let (uid, primary_gid, user_name) = match user {
        Some(text) => lookup_user(text)?,
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        None => (unsafe { libc::getuid() }, unsafe { libc::getgid() }, None),
    };
    let gid = match group {
        Some(text) => lookup_group(text)?,
        None => primary_gid,
    };
    Ok(Identity {
        uid,
        gid,
        user_name,
    })
}

/// Switches the process to `id`: supplementary groups, then group, then user (the order that
/// still has the right to do the next step). Fails unless the process may (root, or `id` is
/// already who it is).
pub fn switch_to(id: &Identity) -> io::Result<()> {
    // SAFETY: getuid/getgid read the process's own ids.
    if unsafe { libc::getuid() } == id.uid && unsafe { libc::getgid() } == id.gid {
        return Ok(());
    }
    match &id.user_name {
        // SAFETY: the name is a valid C string that outlives the call.
        Some(name) => check(unsafe { libc::initgroups(name.as_ptr(), id.gid as _) })?,
        // SAFETY: one group id from a live local.
        None => check(unsafe { libc::setgroups(1, &id.gid) })?,
    }
    // SAFETY: plain system calls on the process's own credentials.
    check(unsafe { libc::setgid(id.gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::setuid(id.uid) })?;
    Ok(())
}

/// Sets the file mode creation mask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn lookup_user(text: &str) -> io::Result<(u32, u32, Option<CString>)> {
    let name = CString::new(text).map_err(|_| not_found("user", text))?;
    // SAFETY: getpwnam_r gets a valid C string and the out-pointers `passwd_entry` gives.
    let by_name = passwd_entry(|entry, buffer, size, found| unsafe {
        libc::getpwnam_r(name.as_ptr(), entry, buffer, size, found)
    });
    if let Some(found) = by_name {
        return Ok(found);
    }
    let uid: u32 = text.parse().map_err(|_| not_found("user", text))?;
    // SAFETY: as above.
    let by_number = passwd_entry(|entry, buffer, size, found| unsafe {
        libc::getpwuid_r(uid, entry, buffer, size, found)
    });
    // A number with no passwd entry (a container's user): its group is the same number.
    Ok(by_number.unwrap_or((uid, uid, None)))
}

/// Runs one `getpw*_r` call with an entry and a buffer of its own; the entry's uid, gid and
/// name when it found one.
fn passwd_entry(
    call: impl FnOnce(
        *mut libc::passwd,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut libc::passwd,
    ) -> libc::c_int,
) -> Option<(u32, u32, Option<CString>)> {
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain old data; zeroed is a valid value to be filled in.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let ret = call(
        &mut entry,
        buffer.as_mut_ptr().cast(),
        buffer.len(),
        &mut found,
    );
    if ret != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a C string inside `buffer`, alive here.
    let user_name = unsafe { CStr::from_ptr(entry.pw_name) }.to_owned();
    Some((entry.pw_uid, entry.pw_gid, Some(user_name)))
}

fn lookup_group(text: &str) -> io::Result<u32> {
    let name = CString::new(text).map_err(|_| not_found("group", text))?;
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: group is plain old data; zeroed is a valid value to be filled in.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local of the size given.
    let ret = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if ret == 0 && !found.is_null() {
        return Ok(entry.gr_gid);
    }
    text.parse().map_err(|_| not_found("group", text))
}

fn not_found(what: &str, text: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no {what} named '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_by_name_and_number() {
        let by_name = resolve(Some("root"), None).unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert_eq!(by_name.user_name.as_deref(), Some(c"root"));
        let by_number = resolve(Some("0"), Some("0")).unwrap();
        assert_eq!((by_number.uid, by_number.gid), (0, 0));
    }

    #[test]
    fn an_unknown_name_is_not_found() {
        let err = resolve(Some("no-such-user-evserver"), None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(resolve(None, Some("no-such-group-evserver")).is_err());
    }

    #[test]
    fn a_number_without_an_entry_stands_for_itself() {
        let id = resolve(Some("4000123"), None).unwrap();
        assert_eq!((id.uid, id.gid, id.user_name), (4_000_123, 4_000_123, None));
    }

    #[test]
    fn switching_to_oneself_is_a_no_op() {
        assert!(switch_to(&resolve(None, None).unwrap()).is_ok());
    }
}
