//! Giving back the code mappings start-up leaves behind (Linux).
//!
//! Linux maps the pages of a file with *fault-around*: a fault on one page of code maps up
//! to `fault_around_bytes` (64 KiB, 16 pages) of its neighbours that are already in the
//! page cache. Start-up — configuration, identity from IMDS, hooks, the inbox, the first
//! call of every SDK client — runs code spread over most of the binary's text, so an agent
//! that has just started shows some 20 MiB of file pages in its `VmRSS` while its idle loop
//! runs a small part of that code again (`BENCHMARKS.md`, "Agent, idle").
//!
//! When the agent goes idle it drops the mappings of its own executable that are
//! read-only and hold no private copy of any page (`madvise(MADV_DONTNEED)`). Nothing is
//! lost: for such a mapping the call only removes page-table entries; the pages stay in
//! the page cache (shared, clean, reclaimable, so this is not memory given back to the
//! machine), and code that runs again is mapped again by its next call, a minor fault.
//! `VmRSS` then shows the idle working set instead of everything start-up touched, which
//! is what an operator reading `top` on a small instance wants to know.
//!
//! Writable mappings (`.data`, `.bss`) and mappings with private pages (RELRO, which the
//! dynamic loader wrote when it applied relocations, or a page a debugger patched) are
//! never touched: for them `MADV_DONTNEED` would discard memory.

// Elsewhere than on Linux only the no-op is used.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::io;

/// What one [`release_code_pages`] call gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Released {
    /// Mappings of the executable that were released.
    pub mappings: usize,
    /// Their resident size just before, KiB.
    pub kib: u64,
}

/// A mapping of `/proc/self/smaps` that can be released without losing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clean {
    start: usize,
    len: usize,
    rss_kib: u64,
}

/// Drops the resident pages of this process's read-only, unmodified mappings of its own
/// executable. A no-op (nothing released) on systems other than Linux.
pub(super) fn release_code_pages() -> io::Result<Released> {
    #[cfg(target_os = "linux")]
    {
        let exe = std::fs::read_link("/proc/self/exe")?;
        let smaps = std::fs::read_to_string("/proc/self/smaps")?;
        let mut out = Released::default();
        for m in clean_mappings(&smaps, &exe.to_string_lossy()) {
            if m.rss_kib == 0 {
                continue;
            }
            // SAFETY: `m` is a whole mapping of this process's executable that
            // `clean_mappings` found neither writable nor holding any anonymous (private,
            // copied-on-write) page, so every resident page in it is an unmodified page of
            // the file. For such a mapping `MADV_DONTNEED` only removes page-table
            // entries: the next access maps the same bytes again from the page cache (or
            // the file), so no memory any code relies on changes. The range comes from the
            // kernel's own list of mappings and is page-aligned; a mapping that went away
            // since we read the list makes the call fail with ENOMEM, which is returned.
            #[allow(unsafe_code)]
            unsafe {
                rustix::mm::madvise(
                    m.start as *mut std::ffi::c_void,
                    m.len,
                    rustix::mm::Advice::LinuxDontNeed,
                )?;
            }
            out.mappings += 1;
            out.kib += m.rss_kib;
        }
        Ok(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(Released::default())
    }
}

/// The mappings of `exe` in `smaps` (the text of `/proc/self/smaps`) that are private,
/// not writable and have no anonymous pages.
fn clean_mappings(smaps: &str, exe: &str) -> Vec<Clean> {
    struct Current {
        start: usize,
        len: usize,
        candidate: bool,
        rss_kib: u64,
        anonymous_kib: Option<u64>,
    }
    fn finish(cur: Option<Current>, out: &mut Vec<Clean>) {
        if let Some(c) = cur
            && c.candidate
            && c.anonymous_kib == Some(0)
        {
            out.push(Clean {
                start: c.start,
                len: c.len,
                rss_kib: c.rss_kib,
            });
        }
    }
    let mut out = Vec::new();
    let mut cur: Option<Current> = None;
    for line in smaps.lines() {
        if let Some(Header { range, perms, path }) = mapping_header(line) {
            finish(cur.take(), &mut out);
            let Some((start, end)) = range else {
                continue;
            };
            let perms = perms.as_bytes();
            let candidate = path == exe
                && perms.len() == 4
                && perms[0] == b'r'
                && perms[1] == b'-'
                && perms[3] == b'p';
            cur = Some(Current {
                start,
                len: end - start,
                candidate,
                rss_kib: 0,
                anonymous_kib: None,
            });
        } else if let Some(c) = cur.as_mut() {
            if let Some(v) = field_kib(line, "Rss:") {
                c.rss_kib = v;
            } else if let Some(v) = field_kib(line, "Anonymous:") {
                c.anonymous_kib = Some(v);
            }
        }
    }
    finish(cur, &mut out);
    out
}

/// A mapping line `start-end perms offset dev inode [path]`: its range (None when it does
/// not parse), permissions and path (may be empty or contain spaces). None for the
/// `Name: value` lines that describe a mapping.
fn mapping_header(line: &str) -> Option<Header<'_>> {
    let mut parts = line.splitn(6, ' ');
    let range = parts.next()?;
    if range.is_empty() || range.ends_with(':') {
        return None;
    }
    let perms = parts.next().unwrap_or("");
    let path = parts.nth(3).unwrap_or("").trim_start();
    let parsed = range.split_once('-').and_then(|(s, e)| {
        let (s, e) = (
            usize::from_str_radix(s, 16).ok()?,
            usize::from_str_radix(e, 16).ok()?,
        );
        (e > s).then_some((s, e))
    });
    Some(Header {
        range: parsed,
        perms,
        path,
    })
}

/// The first line of a mapping in `smaps`.
struct Header<'a> {
    range: Option<(usize, usize)>,
    perms: &'a str,
    path: &'a str,
}

/// `Name:   123 kB` → 123.
fn field_kib(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/local/bin/lifehook";

    fn mapping(header: &str, rss: u64, anonymous: u64) -> String {
        format!(
            "{header}\nSize:              25184 kB\nRss:               {rss} kB\nPss:               {rss} kB\nShared_Clean:          0 kB\nPrivate_Clean:     {rss} kB\nAnonymous:         {anonymous} kB\nVmFlags: rd ex mr mw me \n"
        )
    }

    #[test]
    fn only_read_only_mappings_of_the_executable_without_private_pages_are_clean() {
        let smaps = [
            // rodata: clean
            mapping(
                &format!("55aef73a9000-55aef817c000 r--p 00000000 fe:00 2230946    {EXE}"),
                3740,
                0,
            ),
            // text: clean
            mapping(
                &format!("55aef817c000-55aef9914000 r-xp 00dd2000 fe:00 2230946    {EXE}"),
                15440,
                0,
            ),
            // RELRO: read-only now, but the loader wrote it
            mapping(
                &format!("55aef9914000-55aef9a54000 r--p 02569000 fe:00 2230946    {EXE}"),
                1280,
                1280,
            ),
            // .data: writable
            mapping(
                &format!("55aef9a54000-55aef9ad3000 rw-p 026a8000 fe:00 2230946    {EXE}"),
                508,
                0,
            ),
            // another file
            mapping(
                "7fb6e3f7b000-7fb6e40d1000 r-xp 00026000 fe:00 326279   /usr/lib/x86_64-linux-gnu/libc.so.6",
                852,
                0,
            ),
            // anonymous memory and the heap
            mapping("55af3982a000-55af399f4000 rw-p 00000000 00:00 0 ", 1800, 1800),
            mapping(
                "55af3982a000-55af399f4000 rw-p 00000000 00:00 0      [heap]",
                1800,
                1800,
            ),
        ]
        .concat();
        let clean = clean_mappings(&smaps, EXE);
        assert_eq!(
            clean,
            vec![
                Clean {
                    start: 0x55aef73a9000,
                    len: 0x55aef817c000 - 0x55aef73a9000,
                    rss_kib: 3740,
                },
                Clean {
                    start: 0x55aef817c000,
                    len: 0x55aef9914000 - 0x55aef817c000,
                    rss_kib: 15440,
                },
            ]
        );
    }

    #[test]
    fn a_path_with_spaces_or_a_deleted_executable_still_matches_exactly() {
        let exe = "/opt/my tools/lifehook (deleted)";
        let smaps = [
            mapping(&format!("1000-3000 r-xp 00000000 fe:00 7    {exe}"), 8, 0),
            mapping(
                "3000-5000 r-xp 00000000 fe:00 7    /opt/my tools/lifehook",
                8,
                0,
            ),
        ]
        .concat();
        assert_eq!(
            clean_mappings(&smaps, exe),
            vec![Clean {
                start: 0x1000,
                len: 0x2000,
                rss_kib: 8
            }]
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_or_with_a_bad_range_is_left_alone() {
        let smaps = format!(
            "1000-3000 r-xp 00000000 fe:00 7    {EXE}\nRss:  8 kB\nzz-3000 r-xp 00000000 fe:00 7    {EXE}\nRss:  8 kB\nAnonymous: 0 kB\n5000-4000 r-xp 00000000 fe:00 7    {EXE}\nRss:  8 kB\nAnonymous: 0 kB\n"
        );
        assert_eq!(clean_mappings(&smaps, EXE), vec![]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_the_code_pages_of_this_test_binary_keeps_it_running() {
        fn rss_file_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| field_kib(l, "RssFile:"))
                .unwrap()
        }
        let before = rss_file_kib();
        let released = release_code_pages().unwrap();
        assert!(released.mappings >= 1, "{released:?}");
        assert!(released.kib > 0, "{released:?}");
        // Code and constants mapped again on use are the same bytes: parsing still works.
        let again = clean_mappings(
            &mapping(&format!("1000-3000 r-xp 00000000 fe:00 7    {EXE}"), 8, 0),
            EXE,
        );
        assert_eq!(again.len(), 1);
        assert!(
            rss_file_kib() < before,
            "RssFile {before} KiB before, {} after releasing {released:?}",
            rss_file_kib()
        );
    }
}
