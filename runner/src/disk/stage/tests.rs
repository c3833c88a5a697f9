//! The stage on a real raw image: holds, injected errors, the policies,
//! retries, and the token always coming back exactly once.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use vmdma_core::block::lease::testing::{self, done};
use vmdma_core::block::{BlockDevice, BlockError};
use vmdma_core::memory::VolatileSlice;

use super::*;
use crate::disk::blkdebug::Blkdebug;
use crate::disk::policy::OnError;
use crate::disk::raw::RawDisk;

const SECTORS: u64 = 64;

fn image() -> (tempfile::NamedTempFile, RawDisk) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&vec![0u8; SECTORS as usize * 512]).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.path())
        .unwrap();
    (f, RawDisk::new(file, false).unwrap())
}

fn sector(f: &tempfile::NamedTempFile, n: u64) -> Vec<u8> {
    let mut file = std::fs::File::open(f.path()).unwrap();
    file.seek(SeekFrom::Start(n * 512)).unwrap();
    let mut s = vec![0u8; 512];
    file.read_exact(&mut s).unwrap();
    s
}

/// The stage and an engine as one device, as `Disk` puts them together.
struct Staged<'a, 'm> {
    stage: &'a mut Stage<'m>,
    engine: &'a mut RawDisk,
}

impl<'m> BlockDevice<'m> for Staged<'_, 'm> {
    fn sector_count(&self) -> u64 {
        <RawDisk as BlockDevice<'m>>::sector_count(self.engine)
    }
    fn is_read_only(&self) -> bool {
        false
    }
    fn submit(
        &mut self,
        token: vmdma_core::block::RequestToken,
        req: BlockRequest<'_, 'm>,
    ) -> Result<(), Refused> {
        self.stage.submit(self.engine, token, req)
    }
    fn poll(&mut self) -> Option<Completion> {
        self.stage.next(self.engine, false)
    }
    fn wait(&mut self) -> Option<Completion> {
        self.stage.next(self.engine, true)
    }
}

fn stop_writes(events: &Arc<DiskEvents>) -> Stage<'static> {
    let mut s = Stage::new();
    s.set_policy(
        ErrorPolicy {
            write: OnError::Stop,
            read: OnError::Stop,
        },
        Some(events.clone()),
        "ide0-hd0",
    );
    s
}

#[test]
fn a_stopped_write_is_kept_and_lands_on_retry() {
    let (f, mut raw) = image();
    let events = Arc::new(DiskEvents::new().unwrap());
    let mut stage = stop_writes(&events);
    stage.set_faults(
        Blkdebug::parse("[inject-error]\nevent = \"write_aio\"\nerrno = \"28\"\nonce = \"on\"\n")
            .unwrap(),
    );
    let mut buf = vec![0xABu8; 512];
    let view = VolatileSlice::from_mut_slice(&mut buf);
    let mut d = Staged {
        stage: &mut stage,
        engine: &mut raw,
    };
    let id = testing::write(&mut d, 3, &[view]).unwrap();
    assert_eq!(done(d.poll()), None, "kept, not completed");
    assert_eq!(d.stage.kept(), 1);
    assert!(d.stage.has_stopped());
    let ev = events.drain();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].operation(), ev[0].decision, ev[0].nospace),
        ("write", Decision::Stop, true)
    );
    assert_eq!(sector(&f, 3), vec![0u8; 512], "nothing written yet");
    // A held or stopped request is not released by a tag.
    assert_eq!(d.stage.release(Release::Tag("A")), 0);
    assert_eq!(d.stage.release(Release::Stopped), 1);
    d.stage.submit_released(d.engine);
    assert_eq!(done(d.poll()), Some((id, Ok(()))));
    assert_eq!(d.poll().map(|c| c.id()), None, "exactly one completion");
    assert_eq!(sector(&f, 3), vec![0xAB; 512]);
    assert_eq!(d.stage.kept(), 0);
    assert!(events.drain().is_empty());
}

#[test]
fn report_and_ignore_complete_at_once() {
    for (policy, want) in [
        (OnError::Report, Err(BlockError::Io(5))),
        (OnError::Ignore, Ok(())),
    ] {
        let (_f, mut raw) = image();
        let events = Arc::new(DiskEvents::new().unwrap());
        let mut stage = Stage::new();
        stage.set_policy(
            ErrorPolicy {
                write: policy,
                read: policy,
            },
            Some(events.clone()),
            "ide0-hd0",
        );
        stage.set_faults(Blkdebug::parse("[inject-error]\nevent = \"read_aio\"\n").unwrap());
        let mut buf = vec![0u8; 1024];
        let view = VolatileSlice::from_mut_slice(&mut buf);
        let mut d = Staged {
            stage: &mut stage,
            engine: &mut raw,
        };
        let id = testing::read(&mut d, 0, &[view]).unwrap();
        assert_eq!(done(d.poll()), Some((id, want)), "{policy:?}");
        let ev = events.drain();
        assert_eq!(ev[0].decision.name(), policy.name());
        assert_eq!(ev[0].operation(), "read");
    }
}

#[test]
fn a_held_flush_waits_for_resume_and_goes_on_after_its_event() {
    let (_f, mut raw) = image();
    let mut stage = Stage::new();
    // flush_to_disk fails while the state is 2; the breakpoint on
    // flush_to_os holds the flush first.
    let mut rules = Blkdebug::parse(
        "[inject-error]\nevent = \"flush_to_disk\"\nstate = \"2\"\n\
         [set-state]\nevent = \"flush_to_os\"\nnew_state = \"2\"\n",
    )
    .unwrap();
    rules.add_break("flush_to_os", "A").unwrap();
    stage.set_faults(rules);
    let mut d = Staged {
        stage: &mut stage,
        engine: &mut raw,
    };
    let id = testing::flush(&mut d).unwrap();
    assert_eq!(done(d.poll()), None);
    assert_eq!(done(d.wait()), None, "a bounded wait does not end a hold");
    assert_eq!(d.stage.release(Release::Tag("B")), 0);
    assert_eq!(d.stage.release(Release::Tag("A")), 1);
    d.stage.submit_released(d.engine);
    // Resumed after flush_to_os (which set state 2): flush_to_disk fires in
    // state 2, the rule fails it; without a policy that is reported.
    assert_eq!(done(d.poll()), Some((id, Err(BlockError::Io(5)))));
}

#[test]
fn remove_break_releases_every_request_held_there() {
    let (_f, mut raw) = image();
    let mut stage = Stage::new();
    let mut rules = Blkdebug::new();
    rules.add_break("read_aio", "T").unwrap();
    stage.set_faults(rules);
    let mut a = vec![0u8; 512];
    let mut b = vec![0u8; 512];
    let (va, vb) = (
        VolatileSlice::from_mut_slice(&mut a),
        VolatileSlice::from_mut_slice(&mut b),
    );
    let mut d = Staged {
        stage: &mut stage,
        engine: &mut raw,
    };
    let ia = testing::read(&mut d, 0, &[va]).unwrap();
    // A breakpoint fires once: set it again for the second read.
    d.stage
        .faults_mut()
        .unwrap()
        .add_break("read_aio", "T")
        .unwrap();
    let ib = testing::read(&mut d, 1, &[vb]).unwrap();
    assert_eq!(d.stage.kept(), 2);
    // Both breakpoints fired (and went): none is left to remove.
    assert!(!d.stage.faults_mut().unwrap().remove_break("T"));
    assert_eq!(d.stage.release(Release::AllTagged("T")), 2);
    d.stage.submit_released(d.engine);
    let mut got = vec![d.poll().unwrap().id(), d.poll().unwrap().id()];
    got.sort();
    assert_eq!(got, vec![ia, ib]);
}

#[test]
fn abandon_gives_every_kept_token_back_with_an_error() {
    let (_f, mut raw) = image();
    let events = Arc::new(DiskEvents::new().unwrap());
    let mut stage = stop_writes(&events);
    stage.set_faults(Blkdebug::parse("[inject-error]\nevent = \"flush_to_os\"\n").unwrap());
    let mut d = Staged {
        stage: &mut stage,
        engine: &mut raw,
    };
    let id = testing::flush(&mut d).unwrap();
    assert_eq!(done(d.poll()), None);
    assert_eq!(d.stage.kept(), 1);
    d.stage.abandon();
    assert_eq!(
        done(d.poll()),
        Some((id, Err(BlockError::Io(libc::ECANCELED))))
    );
    assert_eq!(d.stage.outside_engine(), 0);
    // After the end every error reports.
    let id = testing::flush(&mut d).unwrap();
    assert_eq!(done(d.poll()), Some((id, Err(BlockError::Io(5)))));
}

#[test]
fn without_a_monitor_stop_reports() {
    let (_f, mut raw) = image();
    let mut stage = Stage::new();
    stage.set_policy(
        ErrorPolicy {
            write: OnError::Stop,
            read: OnError::Stop,
        },
        None,
        "ide0-hd0",
    );
    stage.set_faults(Blkdebug::parse("[inject-error]\nevent = \"write_aio\"\n").unwrap());
    let mut buf = vec![0u8; 512];
    let view = VolatileSlice::from_mut_slice(&mut buf);
    let mut d = Staged {
        stage: &mut stage,
        engine: &mut raw,
    };
    let id = testing::write(&mut d, 0, &[view]).unwrap();
    assert_eq!(done(d.poll()), Some((id, Err(BlockError::Io(5)))));
}

#[test]
fn a_discard_is_retried_after_a_stop() {
    let (f, mut raw) = image();
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(f.path())
            .unwrap();
        file.write_all(&vec![0x11u8; SECTORS as usize * 512])
            .unwrap();
    }
    let events = Arc::new(DiskEvents::new().unwrap());
    let mut stage = stop_writes(&events);
    // A write activates the rule; it fails discards only, once.
    stage.set_faults(
        Blkdebug::parse(
            "[inject-error]\nevent = \"write_aio\"\niotype = \"discard\"\nonce = \"on\"\n",
        )
        .unwrap(),
    );
    let mut buf = vec![0x22u8; 512];
    let view = VolatileSlice::from_mut_slice(&mut buf);
    let mut d = Staged {
        stage: &mut stage,
        engine: &mut raw,
    };
    let w = testing::write(&mut d, 0, &[view]).unwrap();
    assert_eq!(done(d.poll()), Some((w, Ok(()))));
    let id = testing::discard(&mut d, 8, 8).unwrap();
    assert_eq!(done(d.poll()), None, "stopped");
    assert_eq!(sector(&f, 8), vec![0x11; 512]);
    d.stage.release(Release::Stopped);
    d.stage.submit_released(d.engine);
    assert_eq!(done(d.poll()), Some((id, Ok(()))));
    assert_eq!(
        sector(&f, 8),
        vec![0; 512],
        "the retried discard punched the hole"
    );
}
